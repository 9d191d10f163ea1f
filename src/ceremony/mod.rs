//! Ceremonies: one reviewed file, rehearsed on throwaway tokens, run unchanged on the day.

pub mod action;
pub mod check;
pub mod file;
pub mod perform;
pub mod plan;
pub mod record;
pub mod rehearsal;
pub mod run;
pub mod site;
pub mod transcript;
