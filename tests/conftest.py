import os

from hypothesis import HealthCheck, settings

# CI runs more examples; local runs stay quick.
settings.register_profile("ci", max_examples=200, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=50)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
