//! Reader for the IDX format of MNIST and Fashion-MNIST, gzip-compressed or raw.
//!
//! The format is a big-endian header: two zero bytes, a type code (0x08 = unsigned byte), the number of
//! dimensions, then one u32 per dimension, then the data. Images are `2051` (3 dims), labels `2049`
//! (1 dim). Every way a file can be wrong is an [`IdxError`] naming the file, never a panic; the fix
//! depends on where the data root came from, so [`crate::datasets::load_checked`] appends it.
//!
//! When both `<name>.gz` and a raw `<name>` exist, the `.gz` is read: it is what `make data` installs
//! after verifying it, and a stray raw file beside it must not silently replace it. A `.gz` may hold
//! several gzip members (what `cat a.gz b.gz` or a parallel compressor produces); all are read.

use flate2::read::MultiGzDecoder;
use sha2::{Digest, Sha256};
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Magic number of an IDX file of unsigned-byte images (3 dimensions).
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of unsigned-byte labels (1 dimension).
pub const LABELS_MAGIC: u32 = 0x0000_0801;

/// What went wrong reading an IDX file; the message names the file and what is wrong with it.
#[derive(Debug)]
pub enum IdxError {
    /// Neither `<name>` nor `<name>.gz` exists.
    Missing(PathBuf),
    /// The file exists but could not be read or decompressed.
    Unreadable(PathBuf, String),
    /// The first four bytes are not the expected magic number.
    BadMagic {
        path: PathBuf,
        found: u32,
        expected: u32,
    },
    /// The file ends before the data its header announces.
    Truncated {
        path: PathBuf,
        expected: usize,
        found: usize,
    },
    /// The file is longer than its header announces.
    TrailingBytes {
        path: PathBuf,
        expected: usize,
        found: usize,
    },
    /// An images file and its labels file disagree on the number of items.
    CountMismatch {
        images: PathBuf,
        n_images: usize,
        labels: PathBuf,
        n_labels: usize,
    },
}

impl fmt::Display for IdxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdxError::Missing(p) => write!(f, "{} (or .gz) missing", p.display()),
            IdxError::Unreadable(p, e) => write!(f, "{} unreadable ({e})", p.display()),
            IdxError::BadMagic {
                path,
                found,
                expected,
            } => write!(
                f,
                "{}: magic number {found:#010x}, expected {expected:#010x} (not an IDX file of this kind)",
                path.display()
            ),
            IdxError::Truncated {
                path,
                expected,
                found,
            } => write!(
                f,
                "{}: truncated, header announces {expected} data bytes but only {found} present",
                path.display()
            ),
            IdxError::TrailingBytes {
                path,
                expected,
                found,
            } => write!(
                f,
                "{}: {found} data bytes where the header announces {expected}",
                path.display()
            ),
            IdxError::CountMismatch {
                images,
                n_images,
                labels,
                n_labels,
            } => write!(
                f,
                "{} holds {n_images} images but {} holds {n_labels} labels",
                images.display(),
                labels.display()
            ),
        }
    }
}

impl std::error::Error for IdxError {}

/// The decoded content of one IDX file.
#[derive(Debug, Clone)]
pub struct IdxFile {
    /// Dimensions from the header (`[n, rows, cols]` for images, `[n]` for labels).
    pub dims: Vec<usize>,
    /// The unsigned-byte payload, row-major.
    pub data: Vec<u8>,
    /// SHA-256 (hex) of the whole decompressed file, header included: what `SHA256SUMS.idx` lists.
    pub sha256: String,
}

/// Reads `path.gz` or, when that does not exist, the raw `path`; a `.gz` file is decompressed.
pub fn read_idx(path: &Path, magic: u32) -> Result<IdxFile, IdxError> {
    let (actual, bytes) = read_maybe_gz(path)?;
    parse_idx(&actual, &bytes, magic)
}

fn read_maybe_gz(path: &Path) -> Result<(PathBuf, Vec<u8>), IdxError> {
    let gz = PathBuf::from(format!("{}.gz", path.display()));
    let actual = if gz.exists() {
        gz
    } else if path.exists() {
        path.to_path_buf()
    } else {
        return Err(IdxError::Missing(path.to_path_buf()));
    };
    let raw =
        std::fs::read(&actual).map_err(|e| IdxError::Unreadable(actual.clone(), e.to_string()))?;
    if actual.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::with_capacity(raw.len() * 4);
        MultiGzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| IdxError::Unreadable(actual.clone(), format!("gzip: {e}")))?;
        Ok((actual, out))
    } else {
        Ok((actual, raw))
    }
}

/// Parses decompressed IDX bytes, checking magic, header length and payload length.
pub fn parse_idx(path: &Path, bytes: &[u8], magic: u32) -> Result<IdxFile, IdxError> {
    let be_u32 = |i: usize| -> Option<u32> {
        bytes
            .get(i..i + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    let truncated = |expected: usize| IdxError::Truncated {
        path: path.to_path_buf(),
        expected,
        found: bytes.len(),
    };
    let found = be_u32(0).ok_or_else(|| truncated(4))?;
    if found != magic {
        return Err(IdxError::BadMagic {
            path: path.to_path_buf(),
            found,
            expected: magic,
        });
    }
    let ndims = (magic & 0xff) as usize;
    let header = 4 + 4 * ndims;
    let dims: Vec<usize> = (0..ndims)
        .map(|d| be_u32(4 + 4 * d).map(|v| v as usize))
        .collect::<Option<_>>()
        .ok_or_else(|| truncated(header))?;
    let expected = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| {
            IdxError::Unreadable(path.to_path_buf(), "header dimensions overflow".into())
        })?;
    let payload = &bytes[header..];
    if payload.len() < expected {
        return Err(IdxError::Truncated {
            path: path.to_path_buf(),
            expected,
            found: payload.len(),
        });
    }
    if payload.len() > expected {
        return Err(IdxError::TrailingBytes {
            path: path.to_path_buf(),
            expected,
            found: payload.len(),
        });
    }
    Ok(IdxFile {
        dims,
        data: payload.to_vec(),
        sha256: hex_sha256(bytes),
    })
}

/// The bytes of an unsigned-byte IDX file: `magic`, then `dims` big-endian, then `payload`. The
/// inverse of [`parse_idx`], for writing a data set of one's own in the layout `make data` produces.
pub fn encode_idx(magic: u32, dims: &[u32], payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(4 + 4 * dims.len() + payload.len());
    v.extend(magic.to_be_bytes());
    for d in dims {
        v.extend(d.to_be_bytes());
    }
    v.extend_from_slice(payload);
    v
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn images_bytes(n: u32, rows: u32, cols: u32, payload: usize) -> Vec<u8> {
        let mut v = IMAGES_MAGIC.to_be_bytes().to_vec();
        for d in [n, rows, cols] {
            v.extend(d.to_be_bytes());
        }
        v.extend((0..payload).map(|i| i as u8));
        v
    }

    #[test]
    fn encode_is_the_inverse_of_parse() {
        let bytes = encode_idx(IMAGES_MAGIC, &[2, 3, 4], &(0..24).collect::<Vec<u8>>());
        assert_eq!(bytes, images_bytes(2, 3, 4, 24));
        assert_eq!(
            parse_idx(Path::new("x"), &bytes, IMAGES_MAGIC)
                .unwrap()
                .dims,
            vec![2, 3, 4]
        );
    }

    #[test]
    fn parses_a_well_formed_images_file() {
        let f = parse_idx(Path::new("x"), &images_bytes(2, 3, 4, 24), IMAGES_MAGIC).unwrap();
        assert_eq!(f.dims, vec![2, 3, 4]);
        assert_eq!(f.data.len(), 24);
        assert_eq!(f.data[23], 23);
    }

    #[test]
    fn wrong_magic_is_named() {
        let e = parse_idx(Path::new("x"), &images_bytes(2, 3, 4, 24), LABELS_MAGIC).unwrap_err();
        assert!(
            matches!(
                e,
                IdxError::BadMagic {
                    found: IMAGES_MAGIC,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("not an IDX file"), "{e}");
    }

    #[test]
    fn truncated_payload_and_header_are_errors() {
        let e = parse_idx(Path::new("x"), &images_bytes(2, 3, 4, 23), IMAGES_MAGIC).unwrap_err();
        assert!(
            matches!(
                e,
                IdxError::Truncated {
                    expected: 24,
                    found: 23,
                    ..
                }
            ),
            "{e}"
        );
        let short = &images_bytes(2, 3, 4, 0)[..9];
        assert!(matches!(
            parse_idx(Path::new("x"), short, IMAGES_MAGIC),
            Err(IdxError::Truncated { .. })
        ));
        assert!(matches!(
            parse_idx(Path::new("x"), &[0, 0], IMAGES_MAGIC),
            Err(IdxError::Truncated { .. })
        ));
    }

    #[test]
    fn trailing_bytes_are_errors() {
        let e = parse_idx(Path::new("x"), &images_bytes(2, 3, 4, 25), IMAGES_MAGIC).unwrap_err();
        assert!(matches!(e, IdxError::TrailingBytes { .. }), "{e}");
    }

    fn write_gz_members(path: &Path, members: &[&[u8]]) {
        use flate2::{Compression, write::GzEncoder};
        use std::io::Write;
        let mut file = Vec::new();
        for m in members {
            let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
            enc.write_all(m).unwrap();
            file.extend(enc.finish().unwrap());
        }
        std::fs::write(path, file).unwrap();
    }

    #[test]
    fn a_multi_member_gzip_is_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = images_bytes(2, 3, 4, 24);
        let (head, tail) = bytes.split_at(10);
        let path = dir.path().join("x-images");
        write_gz_members(&path.with_extension("gz"), &[head, tail]);
        let f = read_idx(&path, IMAGES_MAGIC).unwrap();
        assert_eq!(f.data.len(), 24);
        assert_eq!(f.sha256, hex_sha256(&bytes));
    }

    #[test]
    fn the_gz_wins_over_a_raw_file_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x-images");
        write_gz_members(&path.with_extension("gz"), &[&images_bytes(2, 3, 4, 24)]);
        std::fs::write(&path, images_bytes(1, 3, 4, 12)).unwrap();
        assert_eq!(read_idx(&path, IMAGES_MAGIC).unwrap().dims, vec![2, 3, 4]);
        std::fs::remove_file(path.with_extension("gz")).unwrap();
        assert_eq!(read_idx(&path, IMAGES_MAGIC).unwrap().dims, vec![1, 3, 4]);
    }

    #[test]
    fn sha256_of_known_input() {
        assert_eq!(
            hex_sha256(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
