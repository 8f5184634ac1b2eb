//! Rendering of answers, free time, suggestions, history and the week and
//! month grids.

use crate::calendar::Response;

/// The verb of a notification about a guest's answer: `accepted`, ...
pub fn answer_verb(response: Response) -> &'static str {
    match response {
        Response::NeedsAction => "withdrew the answer to",
        Response::Accepted => "accepted",
        Response::Tentative => "tentatively accepted",
        Response::Declined => "declined",
    }
}
