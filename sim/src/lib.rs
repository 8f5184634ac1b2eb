//! Deterministic simulations of an Almanac cluster under turmoil.
