//! Shared mappings of mmap-able BPF arrays (`BPF_F_MMAPABLE`): the controller reads and
//! writes whole tables as memory instead of a syscall per element. Writing 65,521 Maglev
//! slots took 64 ms through `bpf_map_update_elem`.
//!
//! The XDP program reads the same memory concurrently. Writers keep to the ordering
//! `plan` documents (a region is written before the service that points at it is
//! published through a syscall); readers copy elements out with volatile reads.

use std::{
    io,
    os::fd::{AsFd, AsRawFd},
    ptr::NonNull,
};

use aya::maps::MapData;

pub struct MappedArray<T> {
    base: NonNull<u8>,
    len: usize,
    /// The kernel lays elements out at their size rounded up to 8 bytes.
    stride: usize,
    bytes: usize,
    _elem: std::marker::PhantomData<T>,
}

// SAFETY: plain shared memory; every access is a volatile copy of a `Copy` element.
unsafe impl<T> Send for MappedArray<T> {}
unsafe impl<T> Sync for MappedArray<T> {}

impl<T: Copy> MappedArray<T> {
    /// Maps all `len` elements of the array behind `map` (read-only unless `writable`).
    pub fn new(map: &MapData, len: u32, writable: bool) -> io::Result<Self> {
        let stride = std::mem::size_of::<T>().next_multiple_of(8);
        let bytes = (stride * len as usize).next_multiple_of(4096);
        let prot = if writable {
            libc::PROT_READ | libc::PROT_WRITE
        } else {
            libc::PROT_READ
        };
        let fd = map.fd().as_fd().as_raw_fd();
        // SAFETY: maps an mmap-able BPF array of this size; unmapped on drop.
        let p = unsafe { libc::mmap(std::ptr::null_mut(), bytes, prot, libc::MAP_SHARED, fd, 0) };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Self {
            base: NonNull::new(p.cast()).expect("mmap returned a non-null address"),
            len: len as usize,
            stride,
            bytes,
            _elem: std::marker::PhantomData,
        })
    }

    fn at(&self, i: usize) -> *mut T {
        assert!(i < self.len, "index {i} out of {}", self.len);
        // SAFETY: in bounds of the mapping; elements are 8-byte aligned.
        unsafe { self.base.as_ptr().add(i * self.stride).cast() }
    }

    /// A copy of element `i` (torn if the program writes it at the same time).
    pub fn get(&self, i: usize) -> T {
        // SAFETY: in bounds of the live mapping (checked by `at`).
        unsafe { std::ptr::read_volatile(self.at(i)) }
    }

    /// Writes element `i` (the mapping must be writable).
    pub fn set(&mut self, i: usize, v: T) {
        // SAFETY: in bounds of the live mapping (checked by `at`).
        unsafe { std::ptr::write_volatile(self.at(i), v) }
    }

    /// Elements `start..start + out.len()`.
    pub fn read(&self, start: usize, out: &mut [T]) {
        for (k, o) in out.iter_mut().enumerate() {
            *o = self.get(start + k);
        }
    }

    /// A pointer to element `i`, for writing part of it (the mapping must be writable).
    pub fn ptr(&mut self, i: usize) -> *mut T {
        self.at(i)
    }

    /// Writes `values` from element `start` on.
    pub fn write(&mut self, start: usize, values: &[T]) {
        for (k, v) in values.iter().enumerate() {
            self.set(start + k, *v);
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl<T> Drop for MappedArray<T> {
    fn drop(&mut self) {
        // SAFETY: the mapping we made.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.bytes) };
    }
}
