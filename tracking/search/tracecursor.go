package search

// AfterTraceView returns the cursor's keyset position as a TraceView that
// answers with the values recorded from the last row of the previous page
// (for stores that seek in an index ordered like CompareTraces); ok is
// false when the cursor has no keyset position.
func (c *Cursor) AfterTraceView() (v TraceView, ok bool) {
	if c.after == nil {
		return nil, false
	}
	return traceCursor{c.after}, true
}
