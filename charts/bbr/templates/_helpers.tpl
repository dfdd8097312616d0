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
{{- if not (has .Values.provider.name (include "bbr.providers" . | splitList " ")) -}}
{{- fail (printf "provider.name %q: must be one of: %s" .Values.provider.name (include "bbr.providers" .)) -}}
{{- end -}}
{{- if not (has .Values.bbr.failureMode (list "FailOpen" "FailClose")) -}}
{{- fail (printf "bbr.failureMode %q: must be FailOpen or FailClose" .Values.bbr.failureMode) -}}
{{- end -}}
{{- if not (has .Values.bbr.responseMode (list "lean" "compatible")) -}}
{{- fail (printf "bbr.responseMode %q: must be lean or compatible" .Values.bbr.responseMode) -}}
{{- end -}}
{{- end -}}

{{/* --secure-serving: bbr.secureServing, or by provider when empty (see values.yaml). */}}
{{- define "bbr.secureServing" -}}
{{- $v := .Values.bbr.secureServing -}}
{{- if kindIs "bool" $v -}}{{ $v }}
{{- else if eq (toString $v) "" -}}{{ ne .Values.provider.name "envoy-gateway" }}
{{- else -}}{{ fail (printf "bbr.secureServing %q: must be true, false or empty (by provider)" (toString $v)) }}
{{- end -}}
{{- end -}}

{{/* The gateways this chart renders objects for (provider.name). */}}
{{- define "bbr.providers" -}}
none istio gke envoy-gateway kgateway
{{- end -}}

{{/* The BBR Service's cluster-local host name. */}}
{{- define "bbr.host" -}}
{{- printf "%s.%s.svc.cluster.local" .Values.bbr.name .Release.Namespace -}}
{{- end -}}

{{/* Envoy ext_proc processing_mode for the BBR (request always full duplex; response by bbr.responseMode). */}}
{{- define "bbr.envoyProcessingMode" -}}
request_header_mode: SEND
request_body_mode: FULL_DUPLEX_STREAMED
request_trailer_mode: SEND
response_header_mode: SEND
{{- if eq .Values.bbr.responseMode "compatible" }}
response_body_mode: FULL_DUPLEX_STREAMED
response_trailer_mode: SEND
{{- else }}
response_body_mode: STREAMED
response_trailer_mode: SKIP
{{- end }}
{{- end -}}
