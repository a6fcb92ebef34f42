#!/usr/bin/env bash
# Sets up Google Cloud for anomaly-serve: the APIs, an Artifact Registry repository, a GKE cluster
# with node autoscaling, vertical pod autoscaling, Managed Prometheus, Workload Identity and
# Dataplane V2 (which enforces the chart's NetworkPolicy) and the Gateway API, the Kubernetes
# Engine Developer role for Cloud Build, and with --domain, the Google-managed certificate of the
# HTTPS front door (Certificate Manager). Safe to run twice: what exists is left alone.
set -euo pipefail

usage() {
  cat <<USAGE
Usage: scripts/create-cluster.sh [options]

  --project ID          Google Cloud project (default: gcloud's configured project)
  --region REGION       region of the cluster and the repository (default: europe-west1)
  --cluster NAME        GKE cluster (default: anomaly-serve)
  --repository NAME     Artifact Registry Docker repository (default: anomaly-serve)
  --machine-type TYPE   node machine type (default: e2-standard-2)
  --min-nodes N         fewest nodes per zone (default: 1)
  --max-nodes N         most nodes per zone (default: 3)
  --autoscaling MODE    what the chart's autoscaling.mode needs: cpu (nothing more), load (the
                        Custom Metrics Stackdriver Adapter) or keda (KEDA); either of the last two
                        is granted roles/monitoring.viewer by Workload Identity (default: cpu)
  --domain NAME         the domain of the HTTPS front door (synth's DOMAIN): a DNS authorization,
                        a Google-managed certificate for it and the certificate map the chart's
                        Gateway names (anomaly-serve-certmap); prints the DNS record to create
  --dry-run             print every gcloud and kubectl command instead of running it
  -h, --help            this help
USAGE
}

fail() {
  echo "create-cluster.sh: $1" >&2
  echo >&2
  usage >&2
  exit 2
}

project="" region=europe-west1 cluster=anomaly-serve repository=anomaly-serve
machine_type=e2-standard-2 min_nodes=1 max_nodes=3 autoscaling=cpu domain="" dry_run=false

while [ $# -gt 0 ]; do
  case "$1" in
    --project | --region | --cluster | --repository | --machine-type | --min-nodes | --max-nodes | --autoscaling | --domain)
      [ $# -ge 2 ] && [ -n "$2" ] && [ "${2#--}" = "$2" ] || fail "$1 needs a value"
      value=$2
      case "$1" in
        --project) project=$value ;;
        --region) region=$value ;;
        --cluster) cluster=$value ;;
        --repository) repository=$value ;;
        --machine-type) machine_type=$value ;;
        --min-nodes) min_nodes=$value ;;
        --max-nodes) max_nodes=$value ;;
        --autoscaling) autoscaling=$value ;;
        --domain) domain=$value ;;
      esac
      shift 2
      ;;
    --dry-run) dry_run=true; shift ;;
    -h | --help) usage; exit 0 ;;
    *) fail "unknown option: $1" ;;
  esac
done

[[ "$min_nodes" =~ ^[0-9]+$ ]] || fail "--min-nodes must be a whole number, got '$min_nodes'"
[[ "$max_nodes" =~ ^[1-9][0-9]*$ ]] || fail "--max-nodes must be a whole number of at least 1, got '$max_nodes'"
[ "$min_nodes" -le "$max_nodes" ] || fail "--min-nodes ($min_nodes) must not exceed --max-nodes ($max_nodes)"
[[ "$cluster" =~ ^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$ ]] || fail "--cluster must be lower-case letters, digits and '-', got '$cluster'"
[[ "$region" =~ ^[a-z]+-[a-z]+[0-9]+$ ]] || fail "--region must be a region such as europe-west1, got '$region'"
case "$autoscaling" in cpu | load | keda) ;; *) fail "--autoscaling must be cpu, load or keda, got '$autoscaling'" ;; esac
[ -z "$domain" ] || [[ "$domain" =~ ^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]([-a-z0-9]{0,61}[a-z0-9])?$ ]] || fail "--domain must be a host name such as api.example.com, got '$domain'"
if [ -z "$project" ]; then
  project=$(gcloud config get-value project 2>/dev/null || true)
  [ -n "$project" ] || fail "--project is needed: gcloud has no configured project"
fi

# Runs a gcloud command, or prints it with --dry-run.
gc() {
  if $dry_run; then
    printf '+ gcloud'
    printf ' %q' "$@"
    printf '\n'
  else
    gcloud "$@"
  fi
}

# Runs a kubectl command, or prints it with --dry-run.
kc() {
  if $dry_run; then
    printf '+ kubectl'
    printf ' %q' "$@"
    printf '\n'
  else
    kubectl "$@"
  fi
}

# Whether a resource exists; with --dry-run, prints the check and answers no.
exists() {
  if $dry_run; then
    gc "$@"
    return 1
  fi
  gcloud "$@" >/dev/null 2>&1
}

gc services enable container.googleapis.com artifactregistry.googleapis.com cloudbuild.googleapis.com --project "$project"

if exists artifacts repositories describe "$repository" --location "$region" --project "$project"; then
  echo "Artifact Registry repository $repository exists"
else
  gc artifacts repositories create "$repository" --repository-format docker --location "$region" --project "$project"
fi

if exists container clusters describe "$cluster" --region "$region" --project "$project"; then
  echo "GKE cluster $cluster exists"
  # A cluster made before the Gateway API was asked for serves it once updated.
  [ -z "$domain" ] || gc container clusters update "$cluster" --region "$region" --project "$project" --gateway-api standard
else
  gc container clusters create "$cluster" --region "$region" --project "$project" \
    --machine-type "$machine_type" --num-nodes "$min_nodes" \
    --enable-autoscaling --min-nodes "$min_nodes" --max-nodes "$max_nodes" \
    --enable-vertical-pod-autoscaling --enable-managed-prometheus --enable-dataplane-v2 \
    --workload-pool "$project.svc.id.goog" --release-channel regular --gateway-api standard
fi

if $dry_run; then
  gc projects describe "$project" --format 'value(projectNumber)'
  project_number=PROJECT_NUMBER
else
  project_number=$(gcloud projects describe "$project" --format 'value(projectNumber)')
fi
gc projects add-iam-policy-binding "$project" \
  --member "serviceAccount:$project_number@cloudbuild.gserviceaccount.com" \
  --role roles/container.developer --condition None

# Scaling on load: what reads the server's metrics from Managed Prometheus for the HPA, and its
# right to read them, granted to its Kubernetes service account through Workload Identity.
if [ "$autoscaling" != cpu ]; then
  if [ "$autoscaling" = load ]; then
    reader=custom-metrics/custom-metrics-stackdriver-adapter
    manifest=https://raw.githubusercontent.com/GoogleCloudPlatform/k8s-stackdriver/master/custom-metrics-stackdriver-adapter/deploy/production/adapter_new_resource_model.yaml
  else
    reader=keda/keda-operator
    manifest=https://github.com/kedacore/keda/releases/download/v2.16.1/keda-2.16.1.yaml
  fi
  gc container clusters get-credentials "$cluster" --region "$region" --project "$project"
  kc apply --server-side -f "$manifest"
  gc projects add-iam-policy-binding "$project" --role roles/monitoring.viewer --condition None \
    --member "principal://iam.googleapis.com/projects/$project_number/locations/global/workloadIdentityPools/$project.svc.id.goog/subject/ns/${reader%/*}/sa/${reader#*/}"
fi

# The HTTPS front door's certificate: Google-managed, authorized by a DNS record (so that it is
# issued before any traffic reaches the Gateway), in the map the chart's Gateway names.
if [ -n "$domain" ]; then
  gc services enable certificatemanager.googleapis.com --project "$project"
  name=anomaly-serve map=anomaly-serve-certmap
  exists certificate-manager dns-authorizations describe "$name" --project "$project" ||
    gc certificate-manager dns-authorizations create "$name" --domain "$domain" --project "$project"
  exists certificate-manager certificates describe "$name" --project "$project" ||
    gc certificate-manager certificates create "$name" --domains "$domain" --dns-authorizations "$name" --project "$project"
  exists certificate-manager maps describe "$map" --project "$project" ||
    gc certificate-manager maps create "$map" --project "$project"
  exists certificate-manager maps entries describe "$name" --map "$map" --project "$project" ||
    gc certificate-manager maps entries create "$name" --map "$map" --certificates "$name" --hostname "$domain" --project "$project"
  echo
  echo "Create this DNS record at your DNS provider, so that Google can issue the certificate for $domain:"
  gc certificate-manager dns-authorizations describe "$name" --project "$project" --format 'value(dnsResourceRecord.name,dnsResourceRecord.type,dnsResourceRecord.data)'
fi

cat <<NEXT

Next: build and deploy with
  gcloud builds submit --project $project --config cloudbuild.yaml \\
    --substitutions _REGION=$region,_REPOSITORY=$repository,_CLUSTER=$cluster,_NAMESPACE=anomaly-serve${domain:+,_DOMAIN=$domain},SHORT_SHA=\$(git rev-parse --short HEAD)
NEXT
