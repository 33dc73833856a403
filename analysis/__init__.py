"""Analysis of a bargain results store: tidy tables, reference-solution metrics, scaling laws, ratings, figures."""
