# Sourced by with-moto.sh and with-localstack.sh: runs a command against an emulator endpoint
# with dummy credentials and region, and nothing from ~/.aws, then exits with its status.
# (Not `exec`: the caller's EXIT trap must still stop the emulator.)
run_against_emulator() {
  local endpoint=$1
  shift
  export AWS_ENDPOINT_URL=$endpoint
  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=testing
  export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
  export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true
  unset AWS_PROFILE
  local status=0
  "$@" || status=$?
  exit "$status"
}
