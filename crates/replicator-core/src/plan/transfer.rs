//! How a replica is written: one PUT of a body held in memory, one CopyObject inside S3, or
//! a multipart upload whose parts are streamed from ranged GETs or copied inside S3 — with
//! the part size, how many parts are in flight, and what the plan holds in memory.
//! [`choose`] is pure and property-tested against S3's limits and the memory budget.

use std::time::Duration;

use crate::budget::STREAMED_PART_BYTES;

/// S3's limits (Amazon S3 User Guide, "Amazon S3 multipart upload limits").
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
pub const MAX_PART_SIZE: u64 = 5 * 1024 * 1024 * 1024;
pub const MAX_PARTS: u64 = 10_000;
/// The largest single PUT, and the largest CopyObject.
pub const MAX_SINGLE_PUT: u64 = 5 * 1024 * 1024 * 1024;
/// The largest object: 10,000 parts of 5 GiB (48.8 TiB).
pub const MAX_OBJECT_SIZE: u64 = MAX_PARTS * MAX_PART_SIZE;

/// Upper bound on parts in flight for one object, whatever the memory budget allows.
pub const MAX_PARTS_IN_FLIGHT: u64 = 16;

/// The server-side copy rate (bytes per second) a single CopyObject is planned with:
/// deliberately low (copies within a region are usually several times faster), so that a
/// copy chosen to fit the time left does fit.
pub const PLANNED_SERVER_SIDE_RATE: u64 = 32 * 1024 * 1024;

/// The settings a plan depends on (from [`crate::config::TransferConfig`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Objects larger than this are copied in parts.
    pub multipart_threshold: u64,
    /// The preferred part size, grown so that an object fits in 10,000 parts.
    pub part_size: u64,
    /// Server-side copies up to this size take one CopyObject when the time left allows.
    pub single_copy_max: u64,
    /// The memory budget (MAX_IN_FLIGHT_BYTES).
    pub max_in_flight_bytes: u64,
}

/// Whether the bytes go through the function or S3 copies them itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// GET from the source, PUT to the destination, through the function.
    Stream,
    /// CopyObject / UploadPartCopy: the destination role reads the source inside S3.
    ServerSide,
}

/// How the parts of a multipart copy are cut and sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parts {
    pub part_size: u64,
    pub part_count: u64,
    /// Parts sent at once.
    pub in_flight: u64,
}

impl Parts {
    /// The inclusive byte range of part `number` (1-based), as an HTTP Range header wants it.
    pub fn range(&self, size: u64, number: u64) -> (u64, u64) {
        part_range(size, self.part_size, number)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyPlan {
    /// The whole body read into memory, then one PUT (SDK retries can resend it).
    Put,
    /// One CopyObject.
    CopyObject,
    /// CreateMultipartUpload, then each part streamed from a ranged GET into UploadPart.
    StreamedParts(Parts),
    /// CreateMultipartUpload, then UploadPartCopy per part.
    CopiedParts(Parts),
}

impl CopyPlan {
    pub fn parts(&self) -> Option<Parts> {
        match self {
            Self::StreamedParts(p) | Self::CopiedParts(p) => Some(*p),
            Self::Put | Self::CopyObject => None,
        }
    }

    /// The most object bytes this plan holds in memory at once.
    pub fn bytes_held(&self, size: u64) -> u64 {
        match self {
            Self::Put => size,
            Self::StreamedParts(p) => p.in_flight * STREAMED_PART_BYTES,
            Self::CopyObject | Self::CopiedParts(_) => 0,
        }
    }
}

/// The object is larger than S3 allows (it cannot exist; an event or listing says so).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an object of {0} bytes is larger than S3's maximum of {MAX_OBJECT_SIZE} bytes")]
pub struct TooLarge(pub u64);

/// Chooses how to write an object of `size` bytes.
///
/// - Streamed: at or under the threshold one PUT, above it streamed parts.
/// - Server-side: at or under the threshold one CopyObject; above it, still one CopyObject
///   when the object is at most `single_copy_max` (at most 5 GiB) and the time left, if
///   there is a deadline, covers it at [`PLANNED_SERVER_SIDE_RATE`] — one CopyObject cannot
///   be resumed, so a copy the deadline might cut short goes part by part instead.
pub fn choose(
    size: u64,
    limits: &Limits,
    route: Route,
    time_left: Option<Duration>,
) -> Result<CopyPlan, TooLarge> {
    if size > MAX_OBJECT_SIZE {
        return Err(TooLarge(size));
    }
    let small = size <= limits.multipart_threshold.min(MAX_SINGLE_PUT);
    Ok(match route {
        Route::Stream if small => CopyPlan::Put,
        Route::Stream => {
            let in_flight =
                (limits.max_in_flight_bytes / STREAMED_PART_BYTES).clamp(1, MAX_PARTS_IN_FLIGHT);
            CopyPlan::StreamedParts(parts(size, limits.part_size, in_flight))
        }
        Route::ServerSide if small || one_copy_fits(size, limits, time_left) => {
            CopyPlan::CopyObject
        }
        Route::ServerSide => {
            CopyPlan::CopiedParts(parts(size, limits.part_size, MAX_PARTS_IN_FLIGHT))
        }
    })
}

fn one_copy_fits(size: u64, limits: &Limits, time_left: Option<Duration>) -> bool {
    size <= limits.single_copy_max.min(MAX_SINGLE_PUT)
        && time_left
            .is_none_or(|left| left.as_secs_f64() >= size as f64 / PLANNED_SERVER_SIDE_RATE as f64)
}

/// Parts of at least `preferred` bytes, grown in whole MiB so the object fits in 10,000.
fn parts(size: u64, preferred: u64, in_flight: u64) -> Parts {
    let mib = 1024 * 1024;
    let part_size = preferred
        .max(MIN_PART_SIZE)
        .max(size.div_ceil(MAX_PARTS).div_ceil(mib) * mib)
        .min(MAX_PART_SIZE);
    let part_count = size.div_ceil(part_size);
    Parts {
        part_size,
        part_count,
        in_flight: in_flight.min(part_count),
    }
}

/// The inclusive byte range of part `number` (1-based), as used in an HTTP Range header.
pub fn part_range(size: u64, part_size: u64, number: u64) -> (u64, u64) {
    let start = (number - 1) * part_size;
    let end = (start + part_size).min(size) - 1;
    (start, end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MIB: u64 = 1024 * 1024;

    fn limits() -> Limits {
        Limits {
            multipart_threshold: 16 * MIB,
            part_size: 8 * MIB,
            single_copy_max: MAX_SINGLE_PUT,
            max_in_flight_bytes: 32 * MIB,
        }
    }

    #[test]
    fn small_objects_are_single_puts_or_one_copy() {
        let l = limits();
        assert_eq!(choose(0, &l, Route::Stream, None), Ok(CopyPlan::Put));
        assert_eq!(choose(16 * MIB, &l, Route::Stream, None), Ok(CopyPlan::Put));
        assert_eq!(
            choose(1, &l, Route::ServerSide, Some(Duration::ZERO)),
            Ok(CopyPlan::CopyObject)
        );
    }

    #[test]
    fn one_copy_object_when_it_fits_the_time_and_the_limit() {
        let l = limits();
        let one = |size, left: Option<u64>, l: &Limits| {
            choose(size, l, Route::ServerSide, left.map(Duration::from_secs))
                == Ok(CopyPlan::CopyObject)
        };
        assert!(one(1024 * MIB, None, &l));
        // 1 GiB at 32 MiB/s is 32 s.
        assert!(one(1024 * MIB, Some(33), &l));
        assert!(!one(1024 * MIB, Some(31), &l));
        assert!(!one(MAX_SINGLE_PUT + 1, None, &l));
        let capped = Limits {
            single_copy_max: 64 * MIB,
            ..l
        };
        assert!(!one(100 * MIB, None, &capped));
    }

    #[test]
    fn the_largest_object_fits_in_ten_thousand_parts() {
        let plan = choose(MAX_OBJECT_SIZE, &limits(), Route::Stream, None).unwrap();
        let p = plan.parts().unwrap();
        assert_eq!((p.part_size, p.part_count), (MAX_PART_SIZE, MAX_PARTS));
        assert_eq!(
            choose(MAX_OBJECT_SIZE + 1, &limits(), Route::Stream, None),
            Err(TooLarge(MAX_OBJECT_SIZE + 1))
        );
    }

    #[test]
    fn streamed_parts_hold_a_constant_whatever_their_size() {
        // Regression: 5 GiB parts once reserved 5 GiB each from a 32 MiB budget and hung.
        let plan = choose(MAX_OBJECT_SIZE, &limits(), Route::Stream, None).unwrap();
        assert!(plan.bytes_held(MAX_OBJECT_SIZE) <= 32 * MIB);
    }

    fn valid_limits() -> impl Strategy<Value = Limits> {
        (
            1u64..=MAX_SINGLE_PUT,
            MIN_PART_SIZE..=MAX_PART_SIZE,
            0u64..=MAX_SINGLE_PUT,
            0u64..=(8 * 1024 * MIB),
        )
            .prop_map(|(threshold, part_size, single_copy_max, extra)| Limits {
                multipart_threshold: threshold,
                part_size,
                single_copy_max,
                // What the configuration accepts: room for a small object and one part.
                max_in_flight_bytes: threshold.max(STREAMED_PART_BYTES) + extra,
            })
    }

    fn route() -> impl Strategy<Value = Route> {
        prop_oneof![Just(Route::Stream), Just(Route::ServerSide)]
    }

    proptest! {
        #[test]
        fn plans_respect_s3_limits_and_the_memory_budget(
            size in prop_oneof![0u64..=(64 * MIB), 0u64..=MAX_OBJECT_SIZE],
            limits in valid_limits(),
            route in route(),
            left in proptest::option::of(0u64..=900),
        ) {
            let plan = choose(size, &limits, route, left.map(Duration::from_secs)).unwrap();
            prop_assert!(plan.bytes_held(size) <= limits.max_in_flight_bytes,
                "{plan:?} holds {} of a {} budget", plan.bytes_held(size), limits.max_in_flight_bytes);
            match plan {
                CopyPlan::Put => prop_assert!(size <= limits.multipart_threshold && size <= MAX_SINGLE_PUT),
                CopyPlan::CopyObject => prop_assert!(size <= MAX_SINGLE_PUT),
                CopyPlan::StreamedParts(p) | CopyPlan::CopiedParts(p) => {
                    prop_assert!(size > limits.multipart_threshold.min(MAX_SINGLE_PUT));
                    prop_assert!((MIN_PART_SIZE..=MAX_PART_SIZE).contains(&p.part_size));
                    prop_assert!((1..=MAX_PARTS).contains(&p.part_count));
                    prop_assert!(p.part_count * p.part_size >= size);
                    prop_assert!((p.part_count - 1) * p.part_size < size);
                    prop_assert!((1..=MAX_PARTS_IN_FLIGHT).contains(&p.in_flight));
                    let (first, _) = p.range(size, 1);
                    let (_, last) = p.range(size, p.part_count);
                    prop_assert_eq!(first, 0);
                    prop_assert_eq!(last, size - 1);
                }
            }
        }
    }
}
