//! Ceremonies: one reviewed file, rehearsed on throwaway tokens, run unchanged on the day.

pub mod action;
pub mod rehearsal;
pub mod run;
