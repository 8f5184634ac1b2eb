fn main() {
    println!("almanac");
}
