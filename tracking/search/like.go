package search

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

type likeKind uint8

const (
	likeExact    likeKind = iota // no wildcard
	likePrefix                   // lit%
	likeSuffix                   // %lit
	likeContains                 // %lit%
	likeSegments                 // only '%' wildcards: ordered segments
	likeGeneral                  // '_' wildcards or case folding
)

// likePattern is a SQL LIKE pattern compiled once at parse time. '%'
// matches any run of characters (possibly empty), '_' exactly one
// character; there is no escape character. Matching works on runes and
// does not allocate.
type likePattern struct {
	kind likeKind
	fold bool     // ILIKE: case-insensitive (pattern stored lower-cased)
	pat  string   // the pattern (lower-cased when fold)
	lit  string   // literal for exact/prefix/suffix/contains
	segs []string // likeSegments: literals between '%'
}

func compileLike(pattern string, fold bool) *likePattern {
	p := &likePattern{fold: fold, pat: pattern}
	if fold {
		p.pat = strings.ToLower(pattern)
		p.kind = likeGeneral
		return p
	}
	if strings.IndexByte(pattern, '_') >= 0 {
		p.kind = likeGeneral
		return p
	}
	if strings.IndexByte(pattern, '%') < 0 {
		p.kind, p.lit = likeExact, pattern
		return p
	}
	segs := strings.Split(pattern, "%")
	n := len(segs)
	inner := segs[1 : n-1]
	switch {
	case n == 2 && segs[1] == "":
		p.kind, p.lit = likePrefix, segs[0]
	case n == 2 && segs[0] == "":
		p.kind, p.lit = likeSuffix, segs[1]
	case n >= 3 && segs[0] == "" && segs[n-1] == "" && countNonEmpty(inner) <= 1:
		p.kind = likeContains
		for _, s := range inner {
			if s != "" {
				p.lit = s
			}
		}
	default:
		p.kind, p.segs = likeSegments, segs
	}
	return p
}

func countNonEmpty(ss []string) int {
	n := 0
	for _, s := range ss {
		if s != "" {
			n++
		}
	}
	return n
}

func (p *likePattern) match(s string) bool {
	switch p.kind {
	case likeExact:
		return s == p.lit
	case likePrefix:
		return strings.HasPrefix(s, p.lit)
	case likeSuffix:
		return strings.HasSuffix(s, p.lit)
	case likeContains:
		return strings.Contains(s, p.lit)
	case likeSegments:
		first, last := p.segs[0], p.segs[len(p.segs)-1]
		if len(s) < len(first)+len(last) || !strings.HasPrefix(s, first) || !strings.HasSuffix(s, last) {
			return false
		}
		mid := s[len(first) : len(s)-len(last)]
		for _, seg := range p.segs[1 : len(p.segs)-1] {
			k := strings.Index(mid, seg)
			if k < 0 {
				return false
			}
			mid = mid[k+len(seg):]
		}
		return true
	}
	return wildcardMatch(s, p.pat, p.fold)
}

// wildcardMatch matches s against a LIKE pattern with '%' and '_' using the
// classic single-backtrack-point algorithm (O(len(s)*len(p)) worst case).
// With fold, p must already be lower-case and runes of s are lower-cased.
func wildcardMatch(s, p string, fold bool) bool {
	si, pi := 0, 0
	starP, starS := -1, 0
	for si < len(s) {
		if pi < len(p) {
			pr, psz := utf8.DecodeRuneInString(p[pi:])
			if pr == '%' {
				pi += psz
				starP, starS = pi, si
				continue
			}
			sr, ssz := utf8.DecodeRuneInString(s[si:])
			if fold {
				sr = unicode.ToLower(sr)
			}
			if pr == '_' || pr == sr {
				si += ssz
				pi += psz
				continue
			}
		}
		if starP >= 0 {
			_, sz := utf8.DecodeRuneInString(s[starS:])
			starS += sz
			si, pi = starS, starP
			continue
		}
		return false
	}
	for pi < len(p) && p[pi] == '%' {
		pi++
	}
	return pi == len(p)
}
