package search

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// tokKind classifies lexer tokens. The lexer mirrors the parts of sqlparse's
// tokenizer that matter for MLflow's grammar.
type tokKind int

const (
	tkWord     tokKind = iota // bare word: letters, digits, underscore
	tkBacktick                // `quoted name`
	tkDQuote                  // "double quoted" (a symbol in SQL)
	tkSQuote                  // 'single quoted' string literal
	tkNumber                  // integer or float literal
	tkCompare                 // comparison operator: run of <>=~!, or [NOT] LIKE/ILIKE/RLIKE
	tkLParen
	tkRParen
	tkComma
	tkDot
	tkSemicolon
	tkOther // anything else (operators, stray characters, unterminated quotes)
)

type token struct {
	kind tokKind
	text string // raw text as written
	pos  int    // byte offset of the token
	ws   bool   // preceded by whitespace
}

var (
	// Leftmost-first (backtracking-preference) semantics of Go's regexp
	// reproduce the way Python's re picks these literals.
	reSQuote = regexp.MustCompile(`^'(''|\\'|[^'])*'`)
	reDQuote = regexp.MustCompile(`^"(""|\\"|[^"])*"`)
	reBtick  = regexp.MustCompile("^`(``|[^`])*`")
	reFloatE = regexp.MustCompile(`^-?\d+(\.\d+)?[eE]-?\d+`)
	reFloat  = regexp.MustCompile(`^-?(\d+\.\d*|\.\d+)`)
	reInt    = regexp.MustCompile(`^-?\d+`)
)

func isWordRune(r rune) bool {
	return r == '_' || unicode.IsLetter(r) || unicode.IsNumber(r)
}

func isWordStartAt(s string, i int) bool {
	if i >= len(s) {
		return false
	}
	r, _ := utf8.DecodeRuneInString(s[i:])
	return isWordRune(r)
}

// lex splits s into tokens (whitespace dropped, but recorded on the next
// token). It never fails: unknown characters become tkOther tokens, which
// the parser reports as invalid clauses.
func lex(s string) []token {
	var toks []token
	i := 0
	ws := false
	for i < len(s) {
		c := s[i]
		if c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' {
			i++
			ws = true
			continue
		}
		start := i
		kind := tkOther
		n := 0
		switch {
		case c == '\'':
			if m := reSQuote.FindStringIndex(s[i:]); m != nil {
				kind, n = tkSQuote, m[1]
			}
		case c == '"':
			if m := reDQuote.FindStringIndex(s[i:]); m != nil {
				kind, n = tkDQuote, m[1]
			}
		case c == '`':
			if m := reBtick.FindStringIndex(s[i:]); m != nil {
				kind, n = tkBacktick, m[1]
			}
		case c == '(':
			kind, n = tkLParen, 1
		case c == ')':
			kind, n = tkRParen, 1
		case c == ',':
			kind, n = tkComma, 1
		case c == ';':
			kind, n = tkSemicolon, 1
		case strings.IndexByte("<>=~!", c) >= 0:
			n = 1
			for i+n < len(s) && strings.IndexByte("<>=~!", s[i+n]) >= 0 {
				n++
			}
			kind = tkCompare
		}
		if n == 0 && (c == '-' || c == '.' || (c >= '0' && c <= '9')) {
			// A '.' right after an identifier part is the entity separator.
			afterPart := c == '.' && len(toks) > 0 && !ws && isPartKind(toks[len(toks)-1].kind)
			if !afterPart {
				if m := numberLen(s[i:]); m > 0 {
					kind, n = tkNumber, m
				}
			}
			if n == 0 && c == '.' {
				kind, n = tkDot, 1
			}
		}
		if n == 0 && isWordStartAt(s, i) {
			j := i
			for j < len(s) {
				r, sz := utf8.DecodeRuneInString(s[j:])
				if !isWordRune(r) {
					break
				}
				j += sz
			}
			kind, n = tkWord, j-i
			// "NOT LIKE", "NOT ILIKE" are single comparison tokens in sqlparse.
			w := strings.ToUpper(s[i:j])
			switch w {
			case "LIKE", "ILIKE", "RLIKE":
				kind = tkCompare
			case "NOT":
				k := j
				for k < len(s) && (s[k] == ' ' || s[k] == '\t' || s[k] == '\n' || s[k] == '\r') {
					k++
				}
				if k > j {
					e := k
					for e < len(s) && isWordStartAt(s, e) {
						_, sz := utf8.DecodeRuneInString(s[e:])
						e += sz
					}
					switch strings.ToUpper(s[k:e]) {
					case "LIKE", "ILIKE", "RLIKE":
						kind, n = tkCompare, e-i
					}
				}
			}
		}
		if n == 0 {
			_, n = utf8.DecodeRuneInString(s[i:])
			kind = tkOther
		}
		toks = append(toks, token{kind: kind, text: s[start : start+n], pos: start, ws: ws})
		i += n
		ws = false
	}
	return toks
}

func isPartKind(k tokKind) bool {
	return k == tkWord || k == tkBacktick || k == tkDQuote
}

// numberLen returns the length of a numeric literal at the start of s, or 0.
// A literal immediately followed by a word character is not a number (it is
// then lexed as part of a word, which the parser refuses as a value).
func numberLen(s string) int {
	n := 0
	if m := reFloatE.FindStringIndex(s); m != nil {
		n = m[1]
	} else if m := reFloat.FindStringIndex(s); m != nil {
		n = m[1]
	} else if m := reInt.FindStringIndex(s); m != nil {
		n = m[1]
	}
	if n == 0 {
		return 0
	}
	if isWordStartAt(s, n) {
		return 0
	}
	return n
}
