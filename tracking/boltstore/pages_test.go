package boltstore

import (
	"encoding/binary"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// pageOwners maps every page of a bbolt file reachable from its current
// meta page to what it belongs to: a bucket path ("run", "runidx", a
// nested "a/b"), "root" (the root bucket's own pages) or "freelist". It
// reads the file itself (the page layout bbolt documents in its
// internal/common package), so that tests can tell which buckets a commit
// rewrote: bbolt copies every page it changes, and the pages of the new
// tree that were not in the old one are exactly the pages the commit wrote.
func pageOwners(t testing.TB, db *bolt.DB) map[uint64]string {
	t.Helper()
	data, err := os.ReadFile(db.Path())
	if err != nil {
		t.Fatal(err)
	}
	ps := db.Info().PageSize
	page := func(id uint64) []byte {
		off := int(id) * ps
		if off+ps > len(data) {
			t.Fatalf("page %d beyond the file", id)
		}
		return data[off:]
	}
	le := binary.LittleEndian
	owners := map[uint64]string{}
	claim := func(id uint64, p []byte, owner string) {
		overflow := uint64(le.Uint32(p[12:16]))
		for i := uint64(0); i <= overflow; i++ {
			owners[id+i] = owner
		}
	}
	var walk func(id uint64, owner string)
	walk = func(id uint64, owner string) {
		p := page(id)
		claim(id, p, owner)
		flags, count := le.Uint16(p[8:10]), int(le.Uint16(p[10:12]))
		for i := 0; i < count; i++ {
			e := p[16+16*i:]
			switch {
			case flags&0x01 != 0: // branch: pos, ksize, pgid
				walk(le.Uint64(e[8:16]), owner)
			case flags&0x02 != 0: // leaf: flags, pos, ksize, vsize
				if le.Uint32(e[0:4])&0x01 == 0 {
					continue
				}
				pos, ks, vs := le.Uint32(e[4:8]), le.Uint32(e[8:12]), le.Uint32(e[12:16])
				k := e[pos : pos+ks]
				v := e[pos+ks : pos+ks+vs]
				child := string(k)
				if owner != "root" {
					child = owner + "/" + child
				}
				if r := le.Uint64(v[0:8]); r != 0 {
					walk(r, child)
				}
			default:
				t.Fatalf("page %d of %s has flags %#x", id, owner, flags)
			}
		}
	}
	// The current meta page is the one with the higher transaction id.
	var meta []byte
	for _, id := range []uint64{0, 1} {
		m := page(id)[16:]
		if meta == nil || le.Uint64(m[48:56]) > le.Uint64(meta[48:56]) {
			meta = m
		}
	}
	walk(le.Uint64(meta[16:24]), "root")
	if fl := le.Uint64(meta[32:40]); fl != 0 && fl != ^uint64(0) {
		claim(fl, page(fl), "freelist")
	}
	return owners
}

// pagesWritten runs op (which must commit once, or a known number of
// times, and nothing else may write meanwhile) and returns the pages the
// new tree has that the old one did not, counted by owner.
func pagesWritten(t testing.TB, db *bolt.DB, op func()) map[string]int {
	t.Helper()
	before := pageOwners(t, db)
	op()
	after := pageOwners(t, db)
	out := map[string]int{}
	var ids []uint64
	for id, owner := range after {
		if _, ok := before[id]; !ok {
			out[owner]++
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for i, id := range ids {
		if i == 0 || ids[i-1]+1 != id {
			out["(runs)"]++
		}
	}
	return out
}

func fmtPages(m map[string]int) string {
	keys := make([]string, 0, len(m))
	total := 0
	for k, n := range m {
		keys = append(keys, k)
		if !strings.HasPrefix(k, "(") {
			total += n
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "%d pages:", total)
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%d", k, m[k])
	}
	return b.String()
}
