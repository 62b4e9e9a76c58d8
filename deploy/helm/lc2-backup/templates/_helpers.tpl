{{/* The chart's name, unless overridden. */}}
{{- define "lc2-backup.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name: the release name when it already contains the chart name. */}}
{{- define "lc2-backup.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "lc2-backup.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "lc2-backup.instanceLabels" -}}
app.kubernetes.io/name: {{ include "lc2-backup.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels that select the controller's pods. */}}
{{- define "lc2-backup.selectorLabels" -}}
{{ include "lc2-backup.instanceLabels" . }}
app.kubernetes.io/component: controller
{{- end }}

{{/* Labels of every object, without a component. */}}
{{- define "lc2-backup.commonLabels" -}}
helm.sh/chart: {{ include "lc2-backup.chart" . }}
{{ include "lc2-backup.instanceLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: lc2-backup
{{- end }}

{{/* Labels of the controller's objects. */}}
{{- define "lc2-backup.labels" -}}
{{ include "lc2-backup.commonLabels" . }}
app.kubernetes.io/component: controller
{{- end }}

{{- define "lc2-backup.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "lc2-backup.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "lc2-backup.workerServiceAccountName" -}}
{{- if .Values.workerServiceAccount.create }}
{{- default (printf "%s-worker" (include "lc2-backup.fullname" .)) .Values.workerServiceAccount.name }}
{{- else }}
{{- required "workerServiceAccount.name is required when workerServiceAccount.create is false" .Values.workerServiceAccount.name }}
{{- end }}
{{- end }}

{{- define "lc2-backup.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/*
The namespace of the Leases, the worker Jobs and the schedules' CronJobs (controller.namespace):
the release namespace, where the worker ServiceAccount, the ConfigMap and the worker Secret are
and where the controller's Role grants Jobs, CronJobs, Pods and Leases. Another value is refused.
*/}}
{{- define "lc2-backup.controllerNamespace" -}}
{{- $set := dig "controller" "namespace" "" (default (dict) .Values.config) }}
{{- if and $set (ne $set .Release.Namespace) }}
{{- fail (printf "config.controller.namespace is %q, but it must be the release namespace %q (or unset): the controller's Leases, worker Jobs and CronJobs live there, with the worker ServiceAccount, the ConfigMap and the worker Secret, and the chart grants Jobs, CronJobs, Pods and Leases only there" $set .Release.Namespace) }}
{{- end }}
{{- .Release.Namespace }}
{{- end }}

{{/*
The configuration file: .Values.config, where the chart fills what it knows unless set:
controller.namespace = the release namespace; controller.job.image = the chart's image,
.serviceAccountName = the worker ServiceAccount, .configMap = this ConfigMap, .secretName =
worker.secretName (when set).
*/}}
{{- define "lc2-backup.config" -}}
{{- $config := deepCopy (default (dict) .Values.config) }}
{{- $controller := default (dict) (get $config "controller") }}
{{- $job := default (dict) (get $controller "job") }}
{{- $_ := set $job "image" (default (include "lc2-backup.image" .) (get $job "image")) }}
{{- $_ := set $job "serviceAccountName" (default (include "lc2-backup.workerServiceAccountName" .) (get $job "serviceAccountName")) }}
{{- $_ := set $job "configMap" (default (printf "%s-config" (include "lc2-backup.fullname" .)) (get $job "configMap")) }}
{{- if and (not (get $job "secretName")) .Values.worker.secretName }}
{{- $_ := set $job "secretName" .Values.worker.secretName }}
{{- end }}
{{- $_ := set $controller "job" $job }}
{{- $_ := set $controller "namespace" (include "lc2-backup.controllerNamespace" .) }}
{{- $_ := set $config "controller" $controller }}
{{- toYaml $config }}
{{- end }}
