package labels

import (
	"slices"
	"testing"
)

func TestFromStrings(t *testing.T) {
	ls := FromStrings("b", "2", "a", "1", "b", "3")
	if want := (Labels{{"a", "1"}, {"b", "3"}}); !ls.Equal(want) {
		t.Fatalf("FromStrings = %v; want %v (sorted, the last b wins)", ls, want)
	}
	if ls.Get("b") != "3" || ls.Get("c") != "" || !ls.Has("a") || ls.Has("c") {
		t.Fatalf("Get/Has on %v", ls)
	}
	if got := FromStrings("a", "").Has("a"); !got {
		t.Fatal("Has: a label with an empty value is there")
	}
	if s := FromStrings("a", "x\"y").String(); s != `{a="x\"y"}` {
		t.Fatalf("String = %s", s)
	}
	if w := FromStrings("a", "", "b", "1").WithoutEmpty(); !w.Equal(Labels{{"b", "1"}}) {
		t.Fatalf("WithoutEmpty = %v", w)
	}
	// More than 16 labels: Get searches.
	var ss []string
	for _, c := range "abcdefghijklmnopqrstu" {
		ss = append(ss, string(c), string(c)+"v")
	}
	big := FromStrings(ss...)
	if big.Get("q") != "qv" || big.Get("zz") != "" {
		t.Fatalf("Get on %d labels", len(big))
	}
}

func TestBuilder(t *testing.T) {
	b := NewBuilder(FromStrings("a", "1", "b", "2", "e", "", "z", "26"))
	if b.Get("e") != "" {
		t.Fatal("a base label with an empty value reads as missing")
	}
	b.Set("y", "25")
	b.Set("a", "one")
	b.Del("b")
	b.Set("c", "")       // deletes nothing there
	b.Set("y", "twenty") // in place: y stays first of the set labels
	if b.Get("a") != "one" || b.Get("b") != "" || b.Get("y") != "twenty" || b.Get("z") != "26" {
		t.Fatalf("Get after changes: a=%q b=%q y=%q z=%q", b.Get("a"), b.Get("b"), b.Get("y"), b.Get("z"))
	}
	// Range: untouched base labels in name order, then the labels set, in
	// the order they were first set; Set and Del inside change neither.
	var seen []string
	b.Range(func(l Label) {
		seen = append(seen, l.Name+"="+l.Value)
		b.Set("new_"+l.Name, l.Value)
		b.Del(l.Name)
	})
	if want := []string{"z=26", "y=twenty", "a=one"}; !slices.Equal(seen, want) {
		t.Fatalf("Range visited %v; want %v", seen, want)
	}
	want := FromStrings("new_a", "one", "new_y", "twenty", "new_z", "26")
	if got := b.Labels(nil); !got.Equal(want) {
		t.Fatalf("Labels = %v; want %v", got, want)
	}
	// Reset forgets everything; Labels reuses dst.
	dst := make(Labels, 0, 8)
	b.Reset(FromStrings("m", "1", "k", "2"))
	b.Set("a", "0")
	b.Set("n", "3")
	got := b.Labels(dst)
	if !got.Equal(FromStrings("a", "0", "k", "2", "m", "1", "n", "3")) || &got[0] != &dst[:1][0] {
		t.Fatalf("Labels after Reset = %v (reused dst: %v)", got, &got[0] == &dst[:1][0])
	}
	b.Reset(FromStrings("m", "1"))
	if got := b.Labels(nil); !got.Equal(FromStrings("m", "1")) {
		t.Fatalf("unchanged = %v", got)
	}
}

func TestIsValidName(t *testing.T) {
	for n, want := range map[string]bool{"a": true, "_": true, "A9_b": true, "__name__": true, "": false, "9a": false, "a-b": false, "a.b": false, "a:b": false, "ä": false} {
		if IsValidName(n) != want {
			t.Errorf("IsValidName(%q) = %v", n, !want)
		}
	}
}
