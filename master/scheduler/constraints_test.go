package scheduler

import (
	"reflect"
	"testing"
)

func TestParseConstraintsValid(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want Constraint
	}{
		{"unique hostname", []string{"hostname", "UNIQUE"}, Constraint{"hostname", Unique, ""}},
		// Marathon upper-cases the operator before looking it up.
		{"lower case operator", []string{"hostname", "unique"}, Constraint{"hostname", Unique, ""}},
		{"unique with empty value", []string{"rack", "UNIQUE", ""}, Constraint{"rack", Unique, ""}},
		{"cluster without value", []string{"rack", "CLUSTER"}, Constraint{"rack", Cluster, ""}},
		{"cluster with value", []string{"rack", "CLUSTER", "r1"}, Constraint{"rack", Cluster, "r1"}},
		{"group by without value", []string{"rack", "GROUP_BY"}, Constraint{"rack", GroupBy, ""}},
		{"group by with value", []string{"rack", "GROUP_BY", "3"}, Constraint{"rack", GroupBy, "3"}},
		{"like", []string{"region", "LIKE", "eu-.*"}, Constraint{"region", Like, "eu-.*"}},
		{"unlike", []string{"hostname", "UNLIKE", "db[0-9]+"}, Constraint{"hostname", Unlike, "db[0-9]+"}},
		{"max per", []string{"hostname", "MAX_PER", "2"}, Constraint{"hostname", MaxPer, "2"}},
		{"is", []string{"@zone", "IS", "eu-west-1a"}, Constraint{"@zone", Is, "eu-west-1a"}},
		{"is float", []string{"gen", "IS", "2.5"}, Constraint{"gen", Is, "2.5"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, errs := ParseConstraints([][]string{tt.in})
			if len(errs) > 0 {
				t.Fatalf("errors %v", errs)
			}
			if !reflect.DeepEqual(got, []Constraint{tt.want}) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseConstraintsInvalid(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want string
	}{
		{"one element", []string{"hostname"}, "Each constraint must have either 2 or 3 fields"},
		{"four elements", []string{"hostname", "CLUSTER", "a", "b"}, "Each constraint must have either 2 or 3 fields"},
		{"empty field", []string{"", "UNIQUE"}, "missing field for constraint declaration"},
		{"unknown operator", []string{"hostname", "SPREAD"}, "operator must be one of the following UNIQUE, CLUSTER, GROUP_BY, LIKE, MAX_PER, UNLIKE or IS"},
		{"unique with value", []string{"hostname", "UNIQUE", "x"}, "UNIQUE does not accept a value"},
		{"group by not a number", []string{"rack", "GROUP_BY", "two"}, "GROUP BY must define an integer value or else no value at all"},
		{"group by empty", []string{"rack", "GROUP_BY", ""}, "GROUP BY must define an integer value or else no value at all"},
		{"max per without value", []string{"hostname", "MAX_PER"}, "MAX_PER requires an integer value"},
		{"max per not a number", []string{"hostname", "MAX_PER", "1.5"}, "MAX_PER requires an integer value"},
		{"like without value", []string{"rack", "LIKE"}, "LIKE and UNLIKE require a non-empty, regular expression value"},
		{"unlike empty", []string{"rack", "UNLIKE", ""}, "LIKE and UNLIKE require a non-empty, regular expression value"},
		{"like bad regexp", []string{"rack", "LIKE", "rack-["}, "'rack-[' is not a valid regular expression"},
		// Anchoring wraps the pattern in a group; that must not make this valid.
		{"unlike unbalanced", []string{"rack", "UNLIKE", "a)(b"}, "'a)(b' is not a valid regular expression"},
		{"is without value", []string{"rack", "IS"}, "IS requires a non-empty value"},
		{"is set value", []string{"rack", "IS", "{a,b}"}, "IS only supports Mesos text and float values (see http://mesos.apache.org/documentation/latest/attributes-resources/)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, errs := ParseConstraints([][]string{tt.in})
			if got != nil {
				t.Errorf("constraints %v, want none", got)
			}
			want := []FieldError{{Path: "/constraints(0)", Message: tt.want}}
			if !reflect.DeepEqual(errs, want) {
				t.Fatalf("errors %v, want %v", errs, want)
			}
		})
	}
}

// Each bad constraint gets its own error, addressed by its index.
func TestParseConstraintsReportsEveryBadOne(t *testing.T) {
	_, errs := ParseConstraints([][]string{
		{"hostname", "UNIQUE"},
		{"hostname", "NOPE"},
		{"rack", "MAX_PER"},
	})
	want := []FieldError{
		{Path: "/constraints(1)", Message: msgOperator},
		{Path: "/constraints(2)", Message: msgMaxPerValue},
	}
	if !reflect.DeepEqual(errs, want) {
		t.Fatalf("errors %v, want %v", errs, want)
	}
}

func TestParseConstraintsNone(t *testing.T) {
	got, errs := ParseConstraints(nil)
	if got != nil || errs != nil {
		t.Fatalf("got %v, %v", got, errs)
	}
}
