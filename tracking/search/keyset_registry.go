package search

// AfterRegisteredModelView is AfterRunView for registered models: the
// sort values of the row a keyset cursor follows (false for an offset
// cursor).
func (c *Cursor) AfterRegisteredModelView() (v RegisteredModelView, ok bool) {
	if c.after == nil {
		return nil, false
	}
	return rmCursor{c.after}, true
}

// AfterModelVersionView is AfterRunView for model versions.
func (c *Cursor) AfterModelVersionView() (v ModelVersionView, ok bool) {
	if c.after == nil {
		return nil, false
	}
	return mvCursor{c.after}, true
}
