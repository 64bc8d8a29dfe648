//! Acceptance limits and the choice of a working point: which points meet the scenario's
//! limits, which one to recommend, the Pareto fronts of rate against each metric, and an
//! adaptive search for one continuous parameter.
//!
//! - [`limits`]: a value's margin to a limit and the objective's ranking (the `Limit` and
//!   `Objective` types are the scenario's, [`crate::scenario::limits`]);
//! - [`evaluate`](mod@evaluate): each result row against the limits (values, pass/fail, margins);
//! - [`recommend`]: the chosen point and `OUT/recommendation.json`;
//! - [`pareto`]: directions of metric columns and the non-dominated points;
//! - [`search`](mod@search): bracketing and bisection over one parameter, with a monotonicity check.

pub mod evaluate;
pub mod limits;
pub mod pareto;
pub mod recommend;
pub mod search;

pub use evaluate::{RowEvaluation, column_value, evaluate};
pub use pareto::{Direction, Front, fronts};
pub use recommend::{Selection, recommendation, select, write_recommendation};
pub use search::{Evaluation, Outcome, Search, search};
