// Package discovery resolves the targets of scrape jobs (scrape_configs) as
// Prometheus does: it reads each job's static_configs, file_sd_configs,
// dns_sd_configs and http_sd_configs into target groups with Prometheus'
// label conventions (__address__, the group's labels, the SD meta labels),
// adds the job-level labels Prometheus adds before relabeling (job,
// __scheme__, __metrics_path__, __scrape_interval__, __scrape_timeout__,
// __param_<name>), applies relabel_configs with prom/relabel, deletes the
// __meta_* labels as Prometheus does after relabeling, and delivers the
// job's resolved set: its label sets sorted, each once.
//
// In a cluster, the member elected to run discovery publishes that set to
// etcd; the scraper turns each label set into a URL and final labels. A Job
// resolves one job; a Manager runs several and applies a changed
// scrape_configs live, restarting only the sources that changed.
//
// Every source keeps its last good groups when a refresh fails and reports
// the error (Status, Errors); file SD keeps them per file and DNS SD per
// name, as Prometheus does. What one source may hold is bounded (Config):
// bytes read, targets and label pairs per job, labels per target and the
// nodes of a YAML file, so that a hostile file or HTTP body gets an error
// rather than the member's memory. JSON is read as a stream and stops at
// the first bound crossed.
package discovery
