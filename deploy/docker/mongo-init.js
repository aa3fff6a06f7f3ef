// Runs once, when the mongo container initialises an empty data volume (the image's
// /docker-entrypoint-initdb.d, in mongosh, as the root user): the services' own user, with
// readWrite on their database only (change streams included). Its password is MONGO_PASSWORD
// from .env; docker-compose.yml builds MONGO_URL with it.
/* global db */
const password = process.env.MONGO_PASSWORD;
if (!password) throw new Error('MONGO_PASSWORD is not set');
db.getSiblingDB('lead_delivery').createUser({
  user: 'lead_delivery',
  pwd: password,
  roles: [{ role: 'readWrite', db: 'lead_delivery' }],
});
