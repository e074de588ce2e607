package emit

// LabelEscaped is Label for a value already escaped for the text format,
// as AppendEscaped or AppendEscapedBytes escape it. A generator that emits
// the same label value on many series (one per CPU, say) escapes it once
// and saves the work on every series. value is copied; passing a value
// that is not escaped breaks the output.
func (s *Scan) LabelEscaped(name string, value []byte) *Scan {
	s.labelName(name)
	s.key = append(s.key, value...)
	s.key = append(s.key, '"')
	return s
}
