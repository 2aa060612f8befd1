/*
 * The API's executor (api/exec.h). Handlers already run one at a time
 * under ctl->lock, so one thread in arrival order changes no answer: it
 * only moves the work off the thread that parses HTTP.
 */
#include "api/exec.h"

#include "util/thread.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct api_exec {
	struct api_ctl *ctl;
	pthread_t thread;
	pthread_mutex_t lock; /* protects head, tail, stop */
	pthread_cond_t cond;  /* a job arrived, or stop */
	struct api_job *head, *tail;
	bool stop;
};

/* Answer @job without running it: the VMM is stopping. */
static void job_refuse(struct api_job *job)
{
	static const char msg[] = "{\"fault_message\":\"the VMM is stopping\"}";

	job->reply = (struct api_reply){.status = 503, .content_type = "application/json"};
	job->reply.body = strdup(msg);
	job->reply.body_len = job->reply.body ? strlen(msg) : 0;
	job->done(job);
}

/* The next job, or NULL once stopping. */
static struct api_job *exec_take(struct api_exec *ex)
{
	struct api_job *job;

	pthread_mutex_lock(&ex->lock);
	while (!ex->head && !ex->stop)
		pthread_cond_wait(&ex->cond, &ex->lock);
	job = ex->stop ? NULL : ex->head;
	if (job) {
		ex->head = job->next;
		if (!ex->head)
			ex->tail = NULL;
	}
	pthread_mutex_unlock(&ex->lock);
	return job;
}

static void *exec_main(void *arg)
{
	struct api_exec *ex = arg;
	struct api_job *job;

	thread_enter("api-exec");
	while ((job = exec_take(ex))) {
		api_handle(ex->ctl, job->method, job->url, job->body, job->body_len, &job->reply);
		job->done(job);
	}
	return NULL;
}

int api_exec_start(struct api_ctl *ctl, struct api_exec **out)
{
	struct api_exec *ex = calloc(1, sizeof(*ex));
	int ret;

	if (!ex)
		return -ENOMEM;
	ex->ctl = ctl;
	pthread_mutex_init(&ex->lock, NULL);
	pthread_cond_init(&ex->cond, NULL);
	ret = -pthread_create(&ex->thread, NULL, exec_main, ex);
	if (ret < 0) {
		pthread_mutex_destroy(&ex->lock);
		pthread_cond_destroy(&ex->cond);
		free(ex);
		return ret;
	}
	*out = ex;
	return 0;
}

void api_exec_submit(struct api_exec *ex, struct api_job *job)
{
	bool refuse;

	job->next = NULL;
	pthread_mutex_lock(&ex->lock);
	refuse = ex->stop;
	if (!refuse) {
		if (ex->tail)
			ex->tail->next = job;
		else
			ex->head = job;
		ex->tail = job;
		pthread_cond_signal(&ex->cond);
	}
	pthread_mutex_unlock(&ex->lock);
	if (refuse)
		job_refuse(job);
}

void api_exec_stop(struct api_exec *ex)
{
	struct api_job *job, *next;

	if (!ex)
		return;
	pthread_mutex_lock(&ex->lock);
	ex->stop = true;
	job = ex->head;
	ex->head = ex->tail = NULL;
	pthread_cond_signal(&ex->cond);
	pthread_mutex_unlock(&ex->lock);
	pthread_join(ex->thread, NULL);
	for (; job; job = next) {
		next = job->next;
		job_refuse(job);
	}
	pthread_mutex_destroy(&ex->lock);
	pthread_cond_destroy(&ex->cond);
	free(ex);
}
