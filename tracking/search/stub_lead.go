package search

// This file is a placeholder so dependent packages compile while the search
// package is being written; it is deleted when the real API lands.
