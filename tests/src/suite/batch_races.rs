//! Races of `get_or_create_all` (written by a helper).
