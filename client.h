/*
 * client.h — the ts command: connect to the server (starting it when none
 * answers: connect.h), send one request, print the answer, exit.
 */
#pragma once

#include "options.h"

/* Carry out the options' action; returns the exit status. */
int run_client(const Options& o);
