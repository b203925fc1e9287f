// The canonical ABI's memory side for a Go plugin (written by `cargo fidius
// new plugin --lang go`; yours to keep or change): the allocator the host
// writes arguments through (`cabi_realloc`), the one the WASI adapter uses
// while Go starts (`cabi_realloc_adapter`), and the return area.
//
// Go's garbage collector owns the heap, so every buffer whose address the
// host holds stays referenced from `live` until it is freed: arguments when
// read (takeString), results in the export's post-return function
// (`cabi_post_<export>`, calling postReturn).
package main

import "unsafe"

// live keeps every buffer the host may read or write, by address.
var live = map[uint32][]uint64{}

func addrOf(p unsafe.Pointer) uint32 { return uint32(uintptr(p)) }

func ptr(a uint32) unsafe.Pointer { return unsafe.Pointer(uintptr(a)) }

// bytesAt is the n bytes of linear memory at address a.
func bytesAt(a, n uint32) []byte {
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(ptr(a)), n)
}

// alloc returns n fresh bytes, 8-aligned, kept alive until free. An empty
// buffer is the address 8: lifting checks a list's alignment even when it
// is empty.
func alloc(n uint32) uint32 {
	if n == 0 {
		return 8
	}
	buf := make([]uint64, (n+7)/8)
	a := addrOf(unsafe.Pointer(&buf[0]))
	live[a] = buf
	return a
}

func free(a uint32) { delete(live, a) }

// put32 writes a 32-bit value (a length, a handle, a discriminant) at a.
func put32(a, v uint32) { *(*uint32)(ptr(a)) = v }

// takeString copies a string argument out of linear memory and frees it:
// an export's arguments are the callee's.
func takeString(p, n uint32) string {
	s := string(bytesAt(p, n))
	free(p)
	return s
}

//go:wasmexport cabi_realloc
func cabiRealloc(old, oldSize, align, newSize uint32) uint32 {
	if align > 8 {
		panic("cabi_realloc: alignment over 8")
	}
	a := alloc(newSize)
	if old != 0 {
		copy(bytesAt(a, newSize), bytesAt(old, min(oldSize, newSize)))
		free(old)
	}
	return a
}

// The WASI adapter allocates its state and stack once, while Go's runtime
// may still be starting (`_initialize` calls WASI): a bump allocator over a
// static arena, which touches neither the heap nor the scheduler.
var (
	adapterArena [256 << 10]byte
	adapterUsed  uint32
)

//go:wasmexport cabi_realloc_adapter
//go:nosplit
func cabiReallocAdapter(old, oldSize, align, newSize uint32) uint32 {
	base := addrOf(unsafe.Pointer(&adapterArena))
	if align == 0 {
		align = 1
	}
	start := (base + adapterUsed + align - 1) &^ (align - 1)
	if start+newSize > base+uint32(len(adapterArena)) {
		return 0 // exhausted: the adapter traps
	}
	if old != 0 {
		n := oldSize
		if newSize < n {
			n = newSize
		}
		for i := uint32(0); i < n; i++ {
			*(*byte)(ptr(start + i)) = *(*byte)(ptr(old + i))
		}
	}
	adapterUsed = start + newSize - base
	return start
}

// The return area of exports whose result does not fit one value.
var retArea [64]uint64

// returnZeroed clears the first n bytes of the return area (a default
// result: zero, empty, `none`, `ok`, a variant's first case) and returns
// its address.
func returnZeroed(n uint32) uint32 {
	clear(unsafe.Slice((*byte)(unsafe.Pointer(&retArea)), min(n, uint32(len(retArea)*8))))
	return addrOf(unsafe.Pointer(&retArea))
}

// What the current export returns in memory, freed by postReturn once the
// host has copied the result out.
var returned []uint32

// retString copies s into memory the host reads the result from.
func retString(s string) (uint32, uint32) {
	n := uint32(len(s))
	a := alloc(n)
	if n > 0 {
		returned = append(returned, a)
	}
	copy(bytesAt(a, n), s)
	return a, n
}

func postReturn() {
	for _, a := range returned {
		free(a)
	}
	returned = returned[:0]
}
