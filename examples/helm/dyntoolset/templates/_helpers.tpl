{{/* The name of every object of the release. */}}
{{- define "dyntoolset.fullname" -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The labels that select the Pods (never change them: Deployment selectors are immutable). */}}
{{- define "dyntoolset.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The labels of every object. */}}
{{- define "dyntoolset.labels" -}}
{{ include "dyntoolset.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Where the configuration directory and the static tokens are mounted. */}}
{{- define "dyntoolset.configDir" -}}/etc/dyntoolset/config{{- end -}}
{{- define "dyntoolset.authDir" -}}/etc/dyntoolset/auth{{- end -}}

{{/* Health checks go through the API server's service proxy (needs services/proxy). */}}
{{- define "dyntoolset.proxyHealth" -}}
{{- if and .Values.healthChecks.enabled (eq .Values.healthChecks.mode "apiserver-proxy") -}}true{{- end -}}
{{- end -}}

{{/*
The configuration document: .Values.config with what other values decide
(output namespace default, health_checks, api.auth, one block per plugin).
Refuses keys that other values own, so that each setting has one place.
*/}}
{{- define "dyntoolset.config" -}}
{{- $config := deepCopy (.Values.config | default dict) -}}
{{- $health := get $config "health_checks" | default dict -}}
{{- range $key := list "enabled" "mode" -}}
{{- if hasKey $health $key -}}
{{- fail (printf "config.health_checks.%s: set healthChecks.%s instead (the chart derives RBAC and the NetworkPolicy from it)" $key $key) -}}
{{- end -}}
{{- end -}}
{{- if hasKey $config "api" -}}
{{- fail "config.api: set auth.mode and auth.tokenSecret instead (the chart mounts the token Secret)" -}}
{{- end -}}
{{- $output := get $config "output" | default dict -}}
{{- $_ := set $output "name" ($output.name | default "kubernaut-toolset-config") -}}
{{- $_ := set $output "namespace" ($output.namespace | default .Release.Namespace) -}}
{{- $_ := set $config "output" $output -}}
{{- $_ := set $health "enabled" .Values.healthChecks.enabled -}}
{{- $_ := set $health "mode" .Values.healthChecks.mode -}}
{{- $_ := set $config "health_checks" $health -}}
{{- if eq .Values.auth.mode "static" -}}
{{- if not .Values.auth.tokenSecret.name -}}
{{- fail "auth.tokenSecret.name: auth.mode static needs the Secret holding the tokens" -}}
{{- end -}}
{{- $_ := set $config "api" (dict "auth" (dict "mode" "static" "token_file" (printf "%s/%s" (include "dyntoolset.authDir" .) .Values.auth.tokenSecret.key))) -}}
{{- else if ne .Values.auth.mode "kubernetes" -}}
{{- /* kubernetes is the controller's default: written only when it differs. */ -}}
{{- $_ := set $config "api" (dict "auth" (dict "mode" .Values.auth.mode)) -}}
{{- end -}}
{{- if .Values.plugins -}}
{{- $detectors := get $config "detectors" | default dict -}}
{{- range $name := .Values.plugins -}}
{{- $_ := set $detectors $name (get $detectors $name | default dict) -}}
{{- end -}}
{{- $_ := set $config "detectors" $detectors -}}
{{- end -}}
{{- toYaml $config -}}
{{- end -}}

{{/* The namespace of the output ConfigMap (its Role lives there). */}}
{{- define "dyntoolset.outputNamespace" -}}
{{- (include "dyntoolset.config" . | fromYaml).output.namespace -}}
{{- end -}}
{{- define "dyntoolset.outputName" -}}
{{- (include "dyntoolset.config" . | fromYaml).output.name -}}
{{- end -}}
