"""The supervisor's vocabulary: states, events, errors, paths, settings, runtime, secrets."""
