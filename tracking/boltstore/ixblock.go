package boltstore

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// Packed index blocks (the physical layout of bucket ridx).
//
// The run indexes are a sorted set of byte strings (the entries of
// index.go). One bbolt key per entry would cost every entry a 16-byte
// leaf element header plus the whole prefix (experiment, kind, name) and
// run id again; instead, consecutive entries are packed into blocks:
//
//	key:   the block's first entry, whole
//	value: each further entry, in order, as uvarint(bytes shared with the
//	       entry before it) uvarint(length of the rest) rest
//
// (front coding). Blocks do not overlap: every entry of a block sorts
// before the next block's key. A block with an empty value holds one
// entry, so a bucket of one key per entry (schemas 3 and 4) reads as blocks too.
// An insert or delete rewrites the one block holding the entry; a block
// whose value outgrows ixBlockMax is split in two.

// ixBlockMax is the largest value a block keeps before it is split.
const ixBlockMax = 512

// ixBlock is a decoded block: the entries, in order, laid end to end in
// buf (entry i is buf[ends[i-1]:ends[i]], ends[-1] being 0); list is
// scratch space for the entries of a rewrite.
type ixBlock struct {
	buf  []byte
	ends []int
	list [][]byte
}

// blockPool recycles the decode buffers of writes (every index write
// decodes and re-encodes a block).
var blockPool = sync.Pool{New: func() any { return new(ixBlock) }}

func getBlock() *ixBlock { return blockPool.Get().(*ixBlock) }

func putBlock(b *ixBlock) {
	if cap(b.buf) <= 64<<10 {
		blockPool.Put(b)
	}
}

func (b *ixBlock) len() int { return len(b.ends) }

func (b *ixBlock) at(i int) []byte {
	start := 0
	if i > 0 {
		start = b.ends[i-1]
	}
	return b.buf[start:b.ends[i]]
}

// decode fills b from a block's key and value (reusing b's memory).
func (b *ixBlock) decode(key, val []byte) error {
	b.buf = append(b.buf[:0], key...)
	b.ends = append(b.ends[:0], len(key))
	prev := 0 // start of the previous entry in buf
	for len(val) > 0 {
		shared, n := binary.Uvarint(val)
		if n <= 0 {
			return errCorruptIndex(key)
		}
		val = val[n:]
		rest, n := binary.Uvarint(val)
		if n <= 0 || uint64(len(val)-n) < rest {
			return errCorruptIndex(key)
		}
		val = val[n:]
		last := len(b.buf)
		if shared > uint64(last-prev) {
			return errCorruptIndex(key)
		}
		b.buf = append(b.buf, b.buf[prev:prev+int(shared)]...)
		b.buf = append(b.buf, val[:rest]...)
		val = val[rest:]
		prev = last
		b.ends = append(b.ends, len(b.buf))
	}
	return nil
}

// search returns the first position whose entry is >= e, and whether it
// equals e.
func (b *ixBlock) search(e []byte) (int, bool) {
	lo, hi := 0, b.len()
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if bytes.Compare(b.at(m), e) < 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < b.len() && bytes.Equal(b.at(lo), e)
}

// encodeEntries encodes entries (sorted, at least one) as a block value:
// everything after the first.
func encodeEntries(dst []byte, entries [][]byte) []byte {
	if dst == nil {
		n := 0
		for _, e := range entries[1:] {
			n += len(e)
		}
		dst = make([]byte, 0, min(n, 2*ixBlockMax)+2*len(entries))
	}
	for i := 1; i < len(entries); i++ {
		prev, e := entries[i-1], entries[i]
		shared := 0
		for shared < len(prev) && shared < len(e) && prev[shared] == e[shared] {
			shared++
		}
		dst = binary.AppendUvarint(dst, uint64(shared))
		dst = binary.AppendUvarint(dst, uint64(len(e)-shared))
		dst = append(dst, e[shared:]...)
	}
	return dst
}

// entries returns the entries of b as slices of its buffer (in b's
// scratch list).
func (b *ixBlock) entries() [][]byte {
	b.list = b.list[:0]
	for i := range b.len() {
		b.list = append(b.list, b.at(i))
	}
	return b.list
}

// putBlocks writes entries (sorted, non-empty) as one block, or as two
// when the value would exceed ixBlockMax. at is where the entry that
// caused the write sits: an append at the end leaves the first block
// nearly full (entries that arrive in order), other writes split in half.
func putBlocks(bk *bolt.Bucket, entries [][]byte, at int) error {
	val := encodeEntries(nil, entries)
	if len(val) <= ixBlockMax || len(entries) < 4 {
		return bk.Put(bytes.Clone(entries[0]), val)
	}
	cut := len(entries) / 2
	if at == len(entries)-1 {
		cut = len(entries) * 7 / 8
	}
	if err := bk.Put(bytes.Clone(entries[0]), encodeEntries(nil, entries[:cut])); err != nil {
		return err
	}
	return bk.Put(bytes.Clone(entries[cut]), encodeEntries(nil, entries[cut:]))
}

// blockFor positions c on the block that holds e or would: the last block
// whose key is <= e. k is nil when e sorts before every block.
func blockFor(c *bolt.Cursor, e []byte) (k, v []byte) {
	k, v = c.Seek(e)
	if k != nil && bytes.Equal(k, e) {
		return k, v
	}
	if k == nil {
		return c.Last()
	}
	return c.Prev()
}

// ixInsert adds entry e to the packed index in bk (no-op when present).
func ixInsert(bk *bolt.Bucket, e []byte) error {
	c := bk.Cursor()
	k, v := blockFor(c, e)
	b := getBlock()
	defer putBlock(b)
	if k == nil {
		// e sorts first: it heads the first block (or a new one).
		k, v = c.First()
		if k == nil {
			return bk.Put(bytes.Clone(e), nil)
		}
		if err := b.decode(k, v); err != nil {
			return err
		}
		old := bytes.Clone(k)
		if err := bk.Delete(old); err != nil {
			return err
		}
		return putBlocks(bk, append([][]byte{e}, b.entries()...), 0)
	}
	if !bytes.Equal(k, e) && len(v)+len(e)+4 <= ixBlockMax {
		// The common case: e joins the block, which stays small enough.
		out, present, err := spliceInsert(k, v, e)
		if err != nil || present {
			return err
		}
		return bk.Put(bytes.Clone(k), out)
	}
	if err := b.decode(k, v); err != nil {
		return err
	}
	i, found := b.search(e)
	if found {
		return nil
	}
	entries := slices.Insert(b.entries(), i, e)
	return putBlocks(bk, entries, i)
}

// ixRemove deletes entry e from the packed index in bk (no-op when
// absent).
func ixRemove(bk *bolt.Bucket, e []byte) error {
	c := bk.Cursor()
	k, v := blockFor(c, e)
	if k == nil {
		return nil
	}
	if !bytes.Equal(k, e) {
		out, found, err := spliceRemove(k, v, e)
		if err != nil || !found {
			return err
		}
		return bk.Put(bytes.Clone(k), out)
	}
	b := getBlock()
	defer putBlock(b)
	if err := b.decode(k, v); err != nil {
		return err
	}
	i, found := b.search(e)
	if !found {
		return nil
	}
	entries := slices.Delete(b.entries(), i, i+1)
	if i == 0 {
		if err := bk.Delete(bytes.Clone(k)); err != nil {
			return err
		}
		if len(entries) == 0 {
			return nil
		}
		return bk.Put(bytes.Clone(entries[0]), encodeEntries(nil, entries))
	}
	return bk.Put(bytes.Clone(k), encodeEntries(nil, entries))
}

// blockScan reads a block's value entry by entry, rebuilding each entry
// (scratch memory reused), for the in-place edits below.
type blockScan struct {
	val       []byte
	off, next int    // the current entry's encoding is val[off:next]
	cur, prev []byte // the current and the previous entry
}

// step moves to the next encoded entry and returns the scan there; more
// is false at the end (or when the value is malformed: err). A value
// receiver, so that the scratch arrays of the callers stay on the stack.
func (s blockScan) step() (_ blockScan, more bool, err error) {
	if s.next >= len(s.val) {
		s.off = len(s.val)
		return s, false, nil
	}
	s.off = s.next
	b := s.val[s.off:]
	shared, n := binary.Uvarint(b)
	if n <= 0 {
		return s, false, errCorruptIndex(s.val)
	}
	b = b[n:]
	rest, m := binary.Uvarint(b)
	if m <= 0 || uint64(len(b)-m) < rest || shared > uint64(len(s.cur)) {
		return s, false, errCorruptIndex(s.val)
	}
	s.prev, s.cur = s.cur, append(s.prev[:0], s.cur[:shared]...)
	s.cur = append(s.cur, b[m:m+int(rest)]...)
	s.next = s.off + n + m + int(rest)
	return s, true, nil
}

// appendEntryEnc appends the encoding of e after prev.
func appendEntryEnc(dst, prev, e []byte) []byte {
	shared := 0
	for shared < len(prev) && shared < len(e) && prev[shared] == e[shared] {
		shared++
	}
	dst = binary.AppendUvarint(dst, uint64(shared))
	dst = binary.AppendUvarint(dst, uint64(len(e)-shared))
	return append(dst, e[shared:]...)
}

// spliceInsert returns the value of block (key, val) with e (> key) added,
// rewriting only e's encoding and the next entry's; present is true when
// e is there already.
func spliceInsert(key, val, e []byte) (out []byte, present bool, err error) {
	var bufA, bufB [128]byte
	s := blockScan{val: val, cur: append(bufA[:0], key...), prev: bufB[:0]}
	for {
		var more bool
		if s, more, err = s.step(); err != nil {
			return nil, false, err
		}
		if !more {
			// e goes last.
			out = make([]byte, 0, len(val)+len(e)+4)
			out = append(out, val...)
			return appendEntryEnc(out, s.cur, e), false, nil
		}
		switch c := bytes.Compare(s.cur, e); {
		case c == 0:
			return nil, true, nil
		case c > 0:
			// e goes between prev and cur.
			out = make([]byte, 0, len(val)+len(e)+4)
			out = append(out, val[:s.off]...)
			out = appendEntryEnc(out, s.prev, e)
			out = appendEntryEnc(out, e, s.cur)
			return append(out, val[s.next:]...), false, nil
		}
	}
}

// spliceRemove returns the value of block (key, val) without e (> key);
// found is false when e is not there.
func spliceRemove(key, val, e []byte) (out []byte, found bool, err error) {
	var bufA, bufB [128]byte
	s := blockScan{val: val, cur: append(bufA[:0], key...), prev: bufB[:0]}
	for {
		var more bool
		if s, more, err = s.step(); err != nil || !more {
			return nil, false, err
		}
		c := bytes.Compare(s.cur, e)
		if c > 0 {
			return nil, false, nil
		}
		if c < 0 {
			continue
		}
		// Drop cur: the entry after it is re-encoded against prev.
		var bufC [128]byte
		before, start := append(bufC[:0], s.prev...), s.off
		if s, more, err = s.step(); err != nil {
			return nil, false, err
		}
		out = make([]byte, 0, len(val))
		out = append(out, val[:start]...)
		if more {
			out = appendEntryEnc(out, before, s.cur)
			out = append(out, val[s.next:]...)
		}
		return out, true, nil
	}
}

// ixCount counts the entries of the packed index in bk (decoding every
// block: bk's key count is its blocks).
func ixCount(bk *bolt.Bucket) (int, error) {
	b := getBlock()
	defer putBlock(b)
	n := 0
	err := bk.ForEach(func(k, v []byte) error {
		if err := b.decode(k, v); err != nil {
			return err
		}
		n += b.len()
		return nil
	})
	return n, err
}

// ixCursor walks the entries of a packed index in order, with the method
// set of a bbolt cursor (values are always nil). Keys it returns are valid
// until the next move. A corrupt block ends the walk with err set.
type ixCursor struct {
	c   *bolt.Cursor
	b   ixBlock
	i   int
	err error
}

func newIxCursor(bk *bolt.Bucket) *ixCursor { return &ixCursor{c: bk.Cursor()} }

// load decodes the block at k; ok is false at the end or on corruption.
func (x *ixCursor) load(k, v []byte) bool {
	if k == nil {
		return false
	}
	if err := x.b.decode(k, v); err != nil {
		x.err = err
		return false
	}
	return true
}

func (x *ixCursor) cur() ([]byte, []byte) {
	if x.i < 0 || x.i >= x.b.len() {
		return nil, nil
	}
	return x.b.at(x.i), nil
}

// First moves to the first entry.
func (x *ixCursor) First() ([]byte, []byte) {
	if !x.load(x.c.First()) {
		return nil, nil
	}
	x.i = 0
	return x.cur()
}

// Last moves to the last entry.
func (x *ixCursor) Last() ([]byte, []byte) {
	if !x.load(x.c.Last()) {
		return nil, nil
	}
	x.i = x.b.len() - 1
	return x.cur()
}

// Seek moves to the first entry >= e.
func (x *ixCursor) Seek(e []byte) ([]byte, []byte) {
	k, v := blockFor(x.c, e)
	if k == nil {
		return x.First()
	}
	if !x.load(k, v) {
		return nil, nil
	}
	x.i, _ = x.b.search(e)
	if x.i < x.b.len() {
		return x.cur()
	}
	if !x.load(x.c.Next()) {
		return nil, nil
	}
	x.i = 0
	return x.cur()
}

// Next moves to the next entry.
func (x *ixCursor) Next() ([]byte, []byte) {
	if x.i+1 < x.b.len() {
		x.i++
		return x.cur()
	}
	if !x.load(x.c.Next()) {
		x.i = x.b.len()
		return nil, nil
	}
	x.i = 0
	return x.cur()
}

// Prev moves to the previous entry.
func (x *ixCursor) Prev() ([]byte, []byte) {
	if x.i > 0 {
		x.i--
		return x.cur()
	}
	if !x.load(x.c.Prev()) {
		x.i = -1
		return nil, nil
	}
	x.i = x.b.len() - 1
	return x.cur()
}

// kvCursor is what the planner walks: a bbolt cursor (exprun) or an
// ixCursor (ridx).
type kvCursor interface {
	Seek(seek []byte) (key, value []byte)
	Next() (key, value []byte)
	Prev() (key, value []byte)
	Last() (key, value []byte)
}

// ixEntries returns every entry of the packed index in bk, in order
// (tests and diagnostics).
func ixEntries(bk *bolt.Bucket) ([][]byte, error) {
	var out [][]byte
	x := newIxCursor(bk)
	for k, _ := x.First(); k != nil; k, _ = x.Next() {
		out = append(out, bytes.Clone(k))
	}
	if x.err != nil {
		return nil, fmt.Errorf("read index: %w", x.err)
	}
	return out, nil
}
