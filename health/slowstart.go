package health

// rampWeight is weight w ramped linearly over length nanoseconds from
// from (unix nanos) to now: at least 1 so a recovering node is never
// starved, w once the ramp is over or when there is none (from == 0).
func rampWeight(w, from, now, length int64) int64 {
	if from == 0 || length <= 0 {
		return w
	}
	el := now - from
	if el >= length {
		return w
	}
	if el <= 0 {
		return 1
	}
	// w <= 1000 and length <= 1h keep w*el far below overflow; guard anyway.
	if w > 0 && el > (1<<62)/w {
		return w
	}
	return max(w*el/length, 1)
}

// rampProgress is how far a ramp is at now, 0..1 (1: none or done).
func rampProgress(from, now, length int64) float64 {
	if from == 0 || length <= 0 || now-from >= length {
		return 1
	}
	if now <= from {
		return 0
	}
	return float64(now-from) / float64(length)
}
