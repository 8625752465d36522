package ordset

// IsFlat reports whether s holds its ranges in the slice form.
func IsFlat(s *Set) bool { return s.t == nil }
