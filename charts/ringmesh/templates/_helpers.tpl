{{/* Names and labels shared by the templates. The object names are fixed (the control plane and the injector
     look them up by name), so the chart is installed once per cluster. */}}

{{- define "ringmesh.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- define "ringmesh.labels" -}}
app.kubernetes.io/name: ringmesh
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{- define "ringmesh.controlSelector" -}}
app.kubernetes.io/name: ringmesh
app.kubernetes.io/component: control
{{- end }}

{{/* The Secret holding the mesh CA. */}}
{{- define "ringmesh.caSecret" -}}
{{ .Values.ca.existingSecret | default "ringmesh-ca" }}
{{- end }}

{{/* The namespaces the webhook never sees: kube-system, the release namespace, and the configured ones. */}}
{{- define "ringmesh.excludedNamespaces" -}}
{{- $ns := list "kube-system" .Release.Namespace }}
{{- range .Values.webhook.excludeNamespaces }}{{ $ns = append $ns . }}{{ end }}
{{- toJson ($ns | uniq) }}
{{- end }}

{{/* The alerting rules (files/alerts.yaml), runbook links pointed at alerts.runbookBaseURL when it is set. */}}
{{- define "ringmesh.alerts" -}}
{{- $rules := .Files.Get "files/alerts.yaml" }}
{{- with .Values.alerts.runbookBaseURL }}
{{- $rules = $rules | replace "runbook_url: docs/runbooks.md#" (printf "runbook_url: %s#" .) }}
{{- end }}
{{- $rules }}
{{- end }}
