# The servers scripts/infra.sh knows (sourced by infra.sh, which refuses any other name, and by
# with-infra.sh, which passes no other name from its stop list to `infra.sh down`): one list.
# shellcheck disable=SC2034  # (used by the scripts that source it)
ZHIFA_COMPONENTS=(rabbitmq ferretdb postgresql)
