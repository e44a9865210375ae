/*
 * server/migrations.h — the schema migrations embedded at build time from
 * migrations/NNN_*.sql (server/gen_migrations.sh writes the table), so the
 * installed daemon needs no data files to create or upgrade its database.
 */
#ifndef ISIFD_MIGRATIONS_H
#define ISIFD_MIGRATIONS_H

struct migration {
	const char *name;   /* "001_init.sql": the number is its version */
	const char *sql;
};

extern const struct migration isifd_migrations[];
extern const int isifd_n_migrations;

#endif
