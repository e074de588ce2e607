package promtext

// seriesSet is a set of 64-bit series hashes, open addressing with linear
// probing. 0 marks a free slot; hashes of 0 are stored as 1.
type seriesSet struct {
	slots []uint64
	n     int
}

// reset empties s, keeping its table unless it is far larger than hint
// entries need.
func (s *seriesSet) reset(hint int) {
	want := tableSize(hint)
	if len(s.slots) < want || len(s.slots) > 8*want && len(s.slots) > 1024 {
		s.slots = make([]uint64, want)
	} else {
		clear(s.slots)
	}
	s.n = 0
}

// tableSize returns a power of two that holds n entries at most 2/3 full.
func tableSize(n int) int {
	size := 16
	for size*2 < n*3 {
		size *= 2
	}
	return size
}

// insert adds h and reports whether it was not there.
func (s *seriesSet) insert(h uint64) bool {
	if h == 0 {
		h = 1
	}
	if (s.n+1)*3 > len(s.slots)*2 {
		s.grow()
	}
	mask := uint64(len(s.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case 0:
			s.slots[i] = h
			s.n++
			return true
		case h:
			return false
		}
	}
}

// has reports whether h is in s.
func (s *seriesSet) has(h uint64) bool {
	if s.n == 0 {
		return false
	}
	if h == 0 {
		h = 1
	}
	mask := uint64(len(s.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case 0:
			return false
		case h:
			return true
		}
	}
}

func (s *seriesSet) grow() {
	old := s.slots
	s.slots = make([]uint64, max(2*len(old), 16))
	s.n = 0
	for _, h := range old {
		if h != 0 {
			s.insert(h)
		}
	}
}

// copyFrom makes s hold the hashes of o, in a table no larger than they
// need: s lives between scrapes, o is pooled scratch.
func (s *seriesSet) copyFrom(o *seriesSet) {
	s.reset(o.n)
	for _, h := range o.slots {
		if h != 0 {
			s.insert(h)
		}
	}
}
