-- The tables Django 5.2 migrations create on SQLite for auth_user, django_session and the
-- reference app (tests/django-db/shop): copied from a migrated database (sqlite_master).
CREATE TABLE "auth_user" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, "password" varchar(128) NOT NULL, "last_login" datetime NULL, "is_superuser" bool NOT NULL, "username" varchar(150) NOT NULL UNIQUE, "last_name" varchar(150) NOT NULL, "email" varchar(254) NOT NULL, "is_staff" bool NOT NULL, "is_active" bool NOT NULL, "date_joined" datetime NOT NULL, "first_name" varchar(150) NOT NULL);
CREATE TABLE "django_session" ("session_key" varchar(40) NOT NULL PRIMARY KEY, "session_data" text NOT NULL, "expire_date" datetime NOT NULL);
CREATE INDEX "django_session_expire_date_a5c62663" ON "django_session" ("expire_date");
CREATE TABLE "shop_conversation" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, "title" varchar(200) NOT NULL);
CREATE TABLE "shop_conversation_members" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, "conversation_id" integer NOT NULL REFERENCES "shop_conversation" ("id") DEFERRABLE INITIALLY DEFERRED, "user_id" integer NOT NULL REFERENCES "auth_user" ("id") DEFERRABLE INITIALLY DEFERRED);
CREATE UNIQUE INDEX "shop_conversation_members_conversation_id_user_id_4f099445_uniq" ON "shop_conversation_members" ("conversation_id", "user_id");
CREATE INDEX "shop_conversation_members_conversation_id_b6479bd5" ON "shop_conversation_members" ("conversation_id");
CREATE INDEX "shop_conversation_members_user_id_7895e626" ON "shop_conversation_members" ("user_id");
CREATE TABLE "shop_receipt" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, "title" varchar(200) NOT NULL, "owner_id" integer NOT NULL REFERENCES "auth_user" ("id") DEFERRABLE INITIALLY DEFERRED);
CREATE INDEX "shop_receipt_owner_id_8f3528eb" ON "shop_receipt" ("owner_id");
