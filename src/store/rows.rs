//! Row types shared by both backends. (stub)
