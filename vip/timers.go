package vip

import "time"

// Timer formulas of RFC 5798 6.1, computed in nanoseconds so that nothing is
// truncated: at 1 s and priority 100 Skew_Time is exactly 609.375 ms, where
// integer centisecond or (256-p)/256 arithmetic would lose it (FACTS 1.3, 4).
// Every advert interval is a whole number of centiseconds, so the only
// rounding left is below one nanosecond.

// DefaultDownTimerAdverts is the RFC's 3 in Master_Down_Interval.
const DefaultDownTimerAdverts = 3

// SkewTime is ((256 - priority) * Master_Adver_Interval) / 256.
func SkewTime(priority uint8, masterAdverInterval time.Duration) time.Duration {
	return (time.Duration(256-int(priority))*masterAdverInterval + 128) / 256
}

// MasterDownInterval is adverts * Master_Adver_Interval + Skew_Time, with
// adverts = 3 in the RFC (keepalived's down_timer_adverts may change it).
func MasterDownInterval(priority uint8, masterAdverInterval time.Duration, adverts int) time.Duration {
	if adverts < 1 {
		adverts = DefaultDownTimerAdverts
	}
	return time.Duration(adverts)*masterAdverInterval + SkewTime(priority, masterAdverInterval)
}

// SkewTimeV2 is RFC 3768 6.1's Skew_Time, ((256 - Priority) / 256) seconds
// whatever the advert interval (keepalived does the same for VRRPv2).
func SkewTimeV2(priority uint8) time.Duration { return SkewTime(priority, time.Second) }
