package suggest

import "testing"

func TestClosest(t *testing.T) {
	keys := []string{"delay", "rate", "loss", "symmetric", "src", "dst"}
	tests := []struct {
		word string
		want string
	}{
		{"delya", "delay"},
		{"symetric", "symmetric"},
		{"RATE", "rate"},
		{"dts", "dst"}, // one transposition
		{"xyz", ""},    // three edits on three letters is too far
		{"srcs", "src"},
		{"bandwidth", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := Closest(tt.word, keys); got != tt.want {
			t.Errorf("Closest(%q) = %q, want %q", tt.word, got, tt.want)
		}
	}
}

func TestHint(t *testing.T) {
	if got := Hint("quantitiy", []string{"name", "quantity"}); got != ` (did you mean "quantity"?)` {
		t.Errorf("Hint = %q", got)
	}
	if got := Hint("zzz", []string{"name"}); got != "" {
		t.Errorf("Hint = %q, want empty", got)
	}
}

func TestDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"a", "", 1}, {"kitten", "sitting", 3}, {"flaw", "lawn", 2}, {"été", "ete", 2}, {"delya", "delay", 1}, {"ab", "ba", 1},
	}
	for _, tt := range tests {
		if got := distance(tt.a, tt.b); got != tt.want {
			t.Errorf("distance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}
