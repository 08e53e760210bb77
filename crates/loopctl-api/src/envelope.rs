//! The envelopes answers travel in: `{"data":…}` and `{"data":…,"meta":…}` for lists, and
//! the reference's named wrappers (`{"story":…}`, `{"project":…}`) for single records.

use crate::prelude::*;

/// `{"data": …}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Data<T> {
    pub data: T,
}

/// `{"data": …, "meta": …}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DataMeta<T, M> {
    pub data: T,
    pub meta: M,
}
