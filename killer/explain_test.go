package killer

import (
	"slices"
	"testing"
)

// TestUnreadableTasks: the tasks whose stack could not be read are named
// once each (init too, when it is not among the stuck), with the reason;
// a comm or reason the container chose is escaped.
func TestUnreadableTasks(t *testing.T) {
	const timeout = "kernel stack unreadable: proc read did not return in time"
	for _, tt := range []struct {
		name string
		d    *Diagnosis
		want []string
	}{
		{"no diagnosis", nil, nil},
		{"all read", &Diagnosis{Init: Task{TID: 1, Comm: "sh"}, Stuck: []Task{{TID: 7, Comm: "reader"}}}, nil},
		{
			"stuck task",
			&Diagnosis{Init: Task{TID: 1, Comm: "sh"}, Stuck: []Task{{TID: 7, Comm: "reader"}, {TID: 9, Comm: "fusefixture", Unreadable: timeout}}},
			[]string{"task 9 (fusefixture): " + timeout},
		},
		{
			"init unreadable, not stuck",
			&Diagnosis{Init: Task{TID: 1, Comm: "sh", Unreadable: timeout}, Stuck: []Task{{TID: 9, Comm: "x", Unreadable: timeout}}},
			[]string{"task 1 (sh): " + timeout, "task 9 (x): " + timeout},
		},
		{
			"init unreadable and stuck: once",
			&Diagnosis{Init: Task{TID: 1, Comm: "sh", Unreadable: timeout}, Stuck: []Task{{TID: 1, Comm: "sh", Unreadable: timeout}}},
			[]string{"task 1 (sh): " + timeout},
		},
		{
			"hostile comm and reason",
			&Diagnosis{Stuck: []Task{{TID: 9, Comm: "evil\x1b[2J\n", Unreadable: "read /proc/9/stack:\rforged\u202e"}}},
			[]string{`task 9 ("evil\x1b[2J\n"): read /proc/9/stack:\rforged\u202e`},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.d.UnreadableTasks(); !slices.Equal(got, tt.want) {
				t.Errorf("UnreadableTasks() = %q, want %q", got, tt.want)
			}
		})
	}
}
