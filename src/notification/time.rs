//! The timestamp formats of CONTRACT §3.3. (stub: to be implemented)
