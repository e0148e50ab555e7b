//! Keyset pagination: a page of a list and where the next one starts.

/// One page of a keyset-paginated list.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T, C> {
    pub items: Vec<T>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<C>,
}

/// Cuts a `limit + 1` fetch down to a page, remembering where the next one starts.
pub fn page_of<T, C>(mut items: Vec<T>, limit: u32, cursor_of: impl Fn(&T) -> C) -> Page<T, C> {
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    let next = if more {
        items.last().map(cursor_of)
    } else {
        None
    };
    Page { items, next }
}
