//! What the model's `u64` newtypes ([`crate::ChangeSeq`], [`crate::TableId`]) share: their
//! number, the neighbour after them, their 8-byte big-endian key encoding, and `Display` and
//! `FromStr` as the plain number (what JSON documents, headers and hold names hold).

/// Implements the shared API on `$name`, a `u64` newtype whose one field is its number.
macro_rules! numbered {
    ($name:ident) => {
        impl $name {
            #[doc = concat!("The ", stringify!($name), " numbered `n`.")]
            pub const fn new(n: u64) -> $name {
                $name(n)
            }

            /// Its number.
            pub const fn get(self) -> u64 {
                self.0
            }

            #[doc = concat!("The ", stringify!($name), " right after this one.")]
            pub const fn next(self) -> $name {
                $name(self.0 + 1)
            }

            /// The key encoding: 8 big-endian bytes, so key order is numeric order.
            pub const fn to_be_bytes(self) -> [u8; 8] {
                self.0.to_be_bytes()
            }

            /// Reads the key encoding back.
            pub const fn from_be_bytes(bytes: [u8; 8]) -> $name {
                $name(u64::from_be_bytes(bytes))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        /// Reads the plain number `Display` prints.
        impl std::str::FromStr for $name {
            type Err = std::num::ParseIntError;

            fn from_str(s: &str) -> Result<$name, std::num::ParseIntError> {
                s.parse().map($name)
            }
        }
    };
}

pub(crate) use numbered;
