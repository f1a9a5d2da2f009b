// Package clock is the one time source the project's components take as a
// dependency, so that tests drive time by hand (package clocktest) instead
// of sleeping. Components accept a Clock in their Options; nil means System.
//
// It owns no state: there is no package-level clock to set.
package clock
