// Package suggest finds the closest known word to a misspelt one, for
// "did you mean ...?" hints in error messages.
package suggest

import "strings"

// Closest returns the candidate nearest to word by edit distance, or "" when
// none is near enough to be a plausible typo (more than a third of the word
// would have to change). Comparison ignores case; ties go to the earlier
// candidate, so results are deterministic.
func Closest(word string, candidates []string) string {
	w := strings.ToLower(word)
	best, bestDist := "", len(w)/3+1
	for _, c := range candidates {
		if d := distance(w, strings.ToLower(c)); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// Hint formats Closest as a sentence fragment: ` (did you mean "x"?)` or "".
func Hint(word string, candidates []string) string {
	if c := Closest(word, candidates); c != "" {
		return ` (did you mean "` + c + `"?)`
	}
	return ""
}

// distance is the optimal-string-alignment distance between a and b, in
// runes: Levenshtein plus adjacent transpositions, the commonest typo.
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
