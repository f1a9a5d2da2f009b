package balancer

import (
	"testing"

	"github.com/mosparo-lb/mosparo-lb/health"
)

var tierNames = [numTiers]string{"none", "preferred", "other", "fallback"}

// TestTierOf pins what each node state may serve per route class (issue 3,
// FACTS 1.4, 11.2, 11.4): the rules in tierOf's doc comment, one row each.
func TestTierOf(t *testing.T) {
	const redirectedUpdateGET = kindUpdate | kindDrainRedirect // e.g. GET /administration/update/ (not exempt)
	tests := []struct {
		name  string
		class Class
		state health.State
		admin bool
		kind  reqKind
		want  int
	}{
		// Up nodes serve everything; admin: true nodes first for admin and setup.
		{"up frontend", Frontend, health.Up, false, 0, tierPreferred},
		{"up admin:true frontend", Frontend, health.Up, true, 0, tierPreferred},
		{"up api", API, health.Up, false, 0, tierPreferred},
		{"up static redirected GET", Static, health.Up, false, kindDrainRedirect, tierPreferred},
		{"up cron", Cron, health.Up, false, 0, tierPreferred},
		{"up admin UI", Admin, health.Up, false, 0, tierOther},
		{"up admin:true admin UI", Admin, health.Up, true, 0, tierPreferred},
		{"up admin:true setup", Setup, health.Up, true, kindDrainRedirect, tierPreferred},
		{"up setup", Setup, health.Up, false, 0, tierOther},
		// The update routes: a draining node runs the new code (FACTS 11.3).
		{"up admin:true update execute", Admin, health.Up, true, kindUpdate, tierOther},
		{"up update execute", Admin, health.Up, false, kindUpdate, tierOther},
		{"up admin:true redirected update GET", Admin, health.Up, true, redirectedUpdateGET, tierPreferred},
		{"draining update execute", Admin, health.Draining, false, kindUpdate, tierPreferred},
		{"draining admin:true update execute", Admin, health.Draining, true, kindUpdate, tierPreferred},
		// Draining (update not finished): only what it answers itself, as a
		// fallback, and never what SetupSubscriber redirects (FACTS 11.2).
		{"draining frontend POST", Frontend, health.Draining, false, 0, tierFallback},
		{"draining api", API, health.Draining, false, 0, tierFallback},
		{"draining static", Static, health.Draining, false, 0, tierFallback},
		{"draining admin POST", Admin, health.Draining, true, 0, tierFallback},
		{"draining admin GET", Admin, health.Draining, true, kindDrainRedirect, tierNone},
		{"draining resources GET", Resources, health.Draining, false, kindDrainRedirect, tierNone},
		{"draining redirected update GET", Admin, health.Draining, false, redirectedUpdateGET, tierNone},
		// Setup (not installed): the wizard and what its pages load, as a fallback.
		{"setup setup", Setup, health.Setup, false, kindDrainRedirect, tierFallback},
		{"setup admin", Admin, health.Setup, false, 0, tierFallback},
		{"setup static", Static, health.Setup, false, 0, tierFallback},
		{"setup frontend", Frontend, health.Setup, false, 0, tierNone},
		{"setup api", API, health.Setup, true, 0, tierNone},
		{"setup resources", Resources, health.Setup, false, 0, tierNone},
		{"setup cron", Cron, health.Setup, false, 0, tierNone},
		{"setup update execute", Admin, health.Setup, false, kindUpdate, tierNone},
		// Down and maintenance nodes get nothing new; neither does a state
		// health never reports.
		{"down frontend", Frontend, health.Down, false, 0, tierNone},
		{"down admin:true admin", Admin, health.Down, true, 0, tierNone},
		{"down update", Admin, health.Down, false, kindUpdate, tierNone},
		{"maintenance frontend", Frontend, health.Maintenance, false, 0, tierNone},
		{"maintenance admin:true setup", Setup, health.Maintenance, true, 0, tierNone},
		{"zero state", Frontend, 0, false, 0, tierNone},
		{"unknown state", Admin, health.Maintenance + 1, true, kindUpdate, tierNone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tierOf(tt.class, tt.state, tt.admin, tt.kind); got != tt.want {
				t.Errorf("tierOf(%v, %v, admin %v, kind %b) = %s, want %s",
					tt.class, tt.state, tt.admin, tt.kind, tierNames[got], tierNames[tt.want])
			}
		})
	}
}
