// The canonical ABI's memory side for a Go plugin (written by `cargo fidius
// new plugin --lang go`; yours to keep or change): the allocator the host
// writes arguments through (`cabi_realloc`), the one the WASI adapter uses
// while Go starts (`cabi_realloc_adapter`), the return areas, and helpers
// to read and write linear memory.
//
// Who frees what: an export's arguments are the export's, freed once read
// (takeString does; free does for a list); what an export returns in memory
// is freed by its post-return function (`cabi_post_<export>`, calling
// postReturn) once the host has copied it out; an import's results are the
// caller's, freed once read.
package main

import "unsafe"

func addrOf(p unsafe.Pointer) uint32 { return uint32(uintptr(p)) }

func ptr(a uint32) unsafe.Pointer { return unsafe.Pointer(uintptr(a)) }

// bytesAt is the n bytes of linear memory at address a (not a copy).
func bytesAt(a, n uint32) []byte {
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(ptr(a)), n)
}

func get8(a uint32) uint8      { return *(*uint8)(ptr(a)) }
func get32(a uint32) uint32    { return *(*uint32)(ptr(a)) }
func get64(a uint32) uint64    { return *(*uint64)(ptr(a)) }
func put8(a uint32, v uint8)   { *(*uint8)(ptr(a)) = v }
func put32(a uint32, v uint32) { *(*uint32)(ptr(a)) = v }
func put64(a uint32, v uint64) { *(*uint64)(ptr(a)) = v }

// ANCHOR: arena
// ---- what the host writes: an arena -----------------------------------
//
// The host writes an export's arguments (and an import's results) through
// cabi_realloc while the component model forbids the guest to call out:
// a call to any import then traps ("cannot leave component instance").
// Go's allocator may call WASI (it reads the clock when its heap grows),
// so cabi_realloc does not touch Go's heap: it hands out pieces of an
// arena, which starts over once every piece has been freed. The arena is
// kept at least twice as large as the most one call has needed: it grows
// in the next helper an export runs (alloc, takeString, retKeep), where Go
// may call out, and the larger one is used once this one is empty. So a
// call's arguments fit when they are at most twice the most any earlier
// call needed, or arenaStart; one larger still is served from the heap,
// which may trap: raise arenaStart if your interface's arguments can jump
// higher than that. A piece never freed keeps the arena from starting over: free
// every argument.
const arenaStart = 1 << 20 // bytes

var (
	arena      = make([]uint64, arenaStart/8)
	arenaUsed  uint32   // bytes handed out since it was last empty
	arenaLive  uint32   // pieces handed out and not yet freed
	arenaWant  uint32   // the most bytes one call has needed
	arenaSpare []uint64 // a larger arena, used once this one is empty
)

func arenaBase() uint32 { return addrOf(unsafe.Pointer(unsafe.SliceData(arena))) }

func inArena(a uint32) bool {
	base := arenaBase()
	return a >= base && a < base+uint32(len(arena))*8
}

//go:wasmexport cabi_realloc
func cabiRealloc(old, oldSize, align, newSize uint32) uint32 {
	if align > 8 {
		panic("cabi_realloc: alignment over 8")
	}
	if arenaLive == 0 {
		arenaUsed = 0
		if arenaSpare != nil {
			arena, arenaSpare = arenaSpare, nil
		}
	}
	var a uint32
	size := (newSize + 7) &^ 7
	arenaWant = max(arenaWant, arenaUsed+size)
	switch {
	case newSize == 0:
		a = 8 // lifting checks a list's alignment even when it is empty
	case arenaUsed+size <= uint32(len(arena))*8:
		a = arenaBase() + arenaUsed
		arenaUsed += size
		arenaLive++
	default:
		a = heapAlloc(newSize)
	}
	if old != 0 {
		copy(bytesAt(a, newSize), bytesAt(old, min(oldSize, newSize)))
		free(old)
	}
	return a
}

// grow sets a larger arena aside, four times the most one call has
// needed, once that is over half the arena.
func grow() {
	have := uint32(len(arena)) * 8
	if arenaSpare != nil {
		have = uint32(len(arenaSpare)) * 8
	}
	if arenaWant > have/2 {
		arenaSpare = make([]uint64, arenaWant/2)
	}
}

// ANCHOR_END: arena

// ---- what the guest allocates: Go's heap -------------------------------

// live keeps every heap buffer the host may read or write, by address,
// until it is freed: Go's collector owns the heap.
var live = map[uint32][]uint64{}

func heapAlloc(n uint32) uint32 {
	if n == 0 {
		return 8
	}
	buf := make([]uint64, (n+7)/8)
	a := addrOf(unsafe.Pointer(&buf[0]))
	live[a] = buf
	return a
}

// alloc returns n fresh bytes, 8-aligned, kept alive until free: for what
// an export returns or an import takes.
func alloc(n uint32) uint32 {
	grow()
	return heapAlloc(n)
}

// free frees a buffer from cabi_realloc or alloc.
func free(a uint32) {
	if inArena(a) {
		if arenaLive > 0 {
			arenaLive--
		}
		return
	}
	delete(live, a)
}

// stringAt copies a string out of linear memory.
func stringAt(p, n uint32) string { return string(bytesAt(p, n)) }

// takeString copies a string argument out of linear memory and frees it.
func takeString(p, n uint32) string {
	grow()
	s := stringAt(p, n)
	free(p)
	return s
}

// ANCHOR: adapter
// ---- the WASI adapter's start-up arena -----------------------------------
//
// The adapter allocates its state and stack once, while Go's runtime may
// still be starting (`_initialize` calls WASI): a bump allocator over a
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

// ANCHOR_END: adapter

// ---- results -------------------------------------------------------------

// The return area of exports whose result does not fit one value, and a
// separate one for imports called while an export runs.
var (
	retArea    [64]uint64
	importArea [8]uint64
)

func retPtr() uint32    { return addrOf(unsafe.Pointer(&retArea)) }
func importPtr() uint32 { return addrOf(unsafe.Pointer(&importArea)) }

// returnZeroed clears the first n bytes of the return area (a default
// result: zero, empty, `none`, `ok`, a variant's first case) and returns
// its address.
func returnZeroed(n uint32) uint32 {
	clear(unsafe.Slice((*byte)(unsafe.Pointer(&retArea)), min(n, uint32(len(retArea)*8))))
	return retPtr()
}

// What the current export returns in memory, freed by postReturn once the
// host has copied the result out.
var returned []uint32

// retAlloc returns n fresh bytes that are part of the result.
func retAlloc(n uint32) uint32 {
	a := alloc(n)
	if n > 0 {
		returned = append(returned, a)
	}
	return a
}

// retKeep hands a buffer already ours (an argument, an import's result)
// back as part of the result, freed with it.
func retKeep(a, n uint32) {
	grow()
	if n > 0 {
		returned = append(returned, a)
	}
}

// retString copies s into memory the host reads the result from.
func retString(s string) (uint32, uint32) {
	n := uint32(len(s))
	a := retAlloc(n)
	copy(bytesAt(a, n), s)
	return a, n
}

// postReturn frees what the export returned. It runs in a post-return
// function, where calling out traps: it touches no allocator.
func postReturn() {
	for _, a := range returned {
		free(a)
	}
	returned = returned[:0]
}
