//! When a paged listing is done. Every platform's list calls (audiences, lists, segments, import
//! errors) stop on the same conditions, stated once here: no next page named, an empty page (a platform
//! that keeps naming a next page of nothing would loop forever), or a cursor that repeats the one just
//! used (the same page again).

/// The cursor for the next page, or `None` when the listing is done: `next` is the cursor the reply
/// names, `page_was_empty` whether it held no items, `current` the cursor this page was asked with.
pub fn next_cursor(
    next: Option<String>,
    page_was_empty: bool,
    current: Option<&String>,
) -> Option<String> {
    next.filter(|c| !c.is_empty() && !page_was_empty && Some(c) != current)
}

/// The offset of the next page, or `None` when the listing is done: `got` items came back at `offset`
/// out of the `total` the platform reports; an empty page, or reaching `total`, ends it.
pub fn next_offset(offset: usize, got: usize, total: usize) -> Option<usize> {
    let next = offset + got;
    (got > 0 && next < total).then_some(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_stop_on_none_empty_or_repeat() {
        let c = |s: &str| Some(s.to_string());
        assert_eq!(next_cursor(c("b"), false, c("a").as_ref()), c("b"));
        assert_eq!(next_cursor(c("b"), false, None), c("b"));
        assert_eq!(next_cursor(None, false, None), None);
        assert_eq!(next_cursor(c(""), false, None), None);
        assert_eq!(next_cursor(c("b"), true, None), None);
        assert_eq!(next_cursor(c("a"), false, c("a").as_ref()), None);
    }

    #[test]
    fn offsets_stop_on_an_empty_page_or_the_total() {
        assert_eq!(next_offset(0, 100, 250), Some(100));
        assert_eq!(next_offset(200, 50, 250), None);
        assert_eq!(next_offset(0, 0, 250), None);
        assert_eq!(next_offset(0, 100, 100), None);
    }
}
