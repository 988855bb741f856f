//! Kernel buffers stored from a cache-line boundary: packed weight panels, packed and built
//! activation rows, the int32 rows a block of tiles writes for the epilogue.
//!
//! Why: a `Vec`'s buffer is only as aligned as its element (the allocator gives 16 bytes), so a
//! buffer read or written 64 bytes at a time (a zmm register, an AMX tile row) could have every
//! access split across two cache lines, depending on where the allocator put it. On an Intel Xeon
//! with AMX the large GEMMs ran 1.3 times faster with their weight panels on line boundaries (and
//! as slow as before with them 16 bytes past one), the VNNI kernel's 8-10 % faster.
#![deny(clippy::float_arithmetic)]

use std::ops::{Deref, DerefMut};

/// One cache line.
#[repr(C, align(64))]
#[derive(Clone, Copy)]
struct Line([u8; 64]);

/// Integer elements whose every bit pattern is a value, so that a line's bytes can be read as them.
pub trait LineElement: Copy + Default + Send + Sync + private::Sealed {}

mod private {
    pub trait Sealed {}
}

macro_rules! line_elements {
    ($($t:ty),*) => {$(
        impl private::Sealed for $t {}
        impl LineElement for $t {}
    )*};
}
line_elements!(u8, i8, i16, i32);

/// `len` elements of `T`, zero-initialised, starting on a 64-byte boundary.
#[derive(Clone, Default)]
pub struct LineAligned<T: LineElement> {
    lines: Vec<Line>,
    len: usize,
    element: std::marker::PhantomData<T>,
}

impl<T: LineElement> LineAligned<T> {
    pub fn zeroed(len: usize) -> Self {
        let bytes = len * size_of::<T>();
        LineAligned {
            lines: vec![Line([0; 64]); bytes.div_ceil(64)],
            len,
            element: std::marker::PhantomData,
        }
    }
}

impl<T: LineElement> Deref for LineAligned<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        // SAFETY: the lines hold at least `len * size_of::<T>()` initialised bytes, aligned to 64
        // (more than `T` needs), and every bit pattern is a `T` (`LineElement` is sealed to plain
        // integers).
        unsafe { std::slice::from_raw_parts(self.lines.as_ptr().cast::<T>(), self.len) }
    }
}

impl<T: LineElement> DerefMut for LineAligned<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`, with the lines borrowed mutably.
        unsafe { std::slice::from_raw_parts_mut(self.lines.as_mut_ptr().cast::<T>(), self.len) }
    }
}

impl<T: LineElement + std::fmt::Debug> std::fmt::Debug for LineAligned<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<T: LineElement + PartialEq> PartialEq for LineAligned<T> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_on_a_line_holds_its_length_and_is_zeroed() {
        for len in [0, 1, 31, 32, 33, 64, 1000] {
            let mut a = LineAligned::<i16>::zeroed(len);
            assert_eq!(a.len(), len);
            assert_eq!(a.as_ptr() as usize % 64, 0);
            assert!(a.iter().all(|&v| v == 0));
            if let Some(last) = a.last_mut() {
                *last = -7;
                assert_eq!(a[len - 1], -7);
            }
        }
        assert_eq!(LineAligned::<i8>::zeroed(130).as_ptr() as usize % 64, 0);
    }
}
