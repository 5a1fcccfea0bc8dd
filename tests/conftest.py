import os

from hypothesis import HealthCheck, settings

# No per-example deadline: these machines are shared and timing is not what the tests check.
# CI runs more examples; local runs stay quick.
settings.register_profile(
    "ci", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=50, deadline=None)
# A long randomized run, by hand: pytest --hypothesis-profile=soak
settings.register_profile("soak", max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else "dev")
