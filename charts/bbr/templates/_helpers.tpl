{{/* The ServiceAccount and RBAC objects: `<bbr.name>-<release>`, as upstream names them. */}}
{{- define "bbr.saName" -}}
{{- printf "%s-%s" .Values.bbr.name .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "bbr.clusterName" -}}
{{- printf "%s-%s-%s" .Values.bbr.name .Release.Name .Release.Namespace | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "bbr.selectorLabels" -}}
app: {{ .Values.bbr.name }}
{{- end -}}

{{- define "bbr.labels" -}}
app.kubernetes.io/name: {{ .Values.bbr.name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: body-based-router
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "bbr.validate" -}}
{{- $b := .Values.bbr -}}
{{- $ports := list (int $b.port) (int $b.healthCheckPort) (int $b.metricsPort) -}}
{{- if ne (len (uniq $ports)) 3 -}}
{{- fail "bbr.port, bbr.healthCheckPort and bbr.metricsPort must be distinct" -}}
{{- end -}}
{{- if ne .Values.provider.name "none" -}}
{{- fail (printf "provider.name %q: only \"none\" is supported by this chart" .Values.provider.name) -}}
{{- end -}}
{{- end -}}
